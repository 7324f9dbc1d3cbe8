// node send.js HOST PORT [METHOD]: send one message with nodemailer's SMTP transport,
// authenticating as $AUTHSPEC_USER with $AUTHSPEC_PASSWORD (environment, never argv).
// METHOD (PLAIN, LOGIN, CRAM-MD5) forces nodemailer's authMethod; without it
// nodemailer picks from the server's list. Exit 0 when the message was accepted.
'use strict';
const nodemailer = require('nodemailer');

const [host, port, method] = process.argv.slice(2);
if (!host || !port) {
  console.error('usage: node send.js HOST PORT [PLAIN|LOGIN|CRAM-MD5]');
  process.exit(2);
}
const transport = nodemailer.createTransport({
  host,
  port: Number(port),
  secure: false,
  ignoreTLS: true,
  name: 'client.nodemailer.test',
  auth: { user: process.env.AUTHSPEC_USER || '', pass: process.env.AUTHSPEC_PASSWORD || '' },
  authMethod: method || undefined,
  connectionTimeout: 10000,
  greetingTimeout: 10000,
  socketTimeout: 10000,
  logger: true,
  debug: true,
});
transport
  .sendMail({
    from: 'alice@authspec.test',
    to: 'bob@example.net',
    subject: 'authspec interop (nodemailer)',
    text: 'hello from nodemailer\r\n',
  })
  .then((info) => {
    console.log('accepted: ' + info.response);
    process.exit(0);
  })
  .catch((err) => {
    console.error('nodemailer: ' + (err && err.message));
    process.exit(1);
  });
