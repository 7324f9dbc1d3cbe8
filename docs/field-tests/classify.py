#!/usr/bin/env python3
"""The hand classification of the field test's fail/error verdicts, as rules, so an
"after" run can be counted the same way. Reads <run>.json from $FIELD_TEST_DIR
(default /tmp/ft/); prints verdict counts per (run, class) and lists what no rule
covers (UNCLASSIFIED: look at those by hand). See README.md beside this file."""
import json,re,collections,sys,os
RUNS=[('exim','exim-plain','127.0.0.1:2530, cleartext, --ca-file'),
      ('exim','exim-starttls','127.0.0.1:2530, --starttls --tls-insecure'),
      ('exim-dovecot','eximdc-plain','127.0.0.1:2531, cleartext, --ca-file'),
      ('exim-dovecot','eximdc-starttls','127.0.0.1:2531, --starttls --ca-file'),
      ('opensmtpd','osm-plain','127.0.0.1:2532, cleartext, no TLS options'),
      ('opensmtpd','osm-plain-ca','127.0.0.1:2532, cleartext, --ca-file'),
      ('opensmtpd','osm-starttls','127.0.0.1:2532, --starttls --tls-insecure')]
D=os.path.join(os.environ.get('FIELD_TEST_DIR','/tmp/ft'),'')
PROFILE_IDS=set('''security-options/dovecot-nodictionary security-options/mechanism-filter-exclude security-options/mechanism-filter-keep
security-options/mutual-auth security-options/noactive security-options/noactive-mutual-auth security-options/noanonymous
security-options/nodictionary security-options/noplaintext security-options/noplaintext-noanonymous security-options/tls-auth-only-with-options
security-options/tls-options-before-after security-options/tls-options-default-inherits starttls/auth-hidden-before-tls-no-prompt
starttls/capabilities-change-tls-auth-only starttls/encrypt-level-530 starttls/starttls-not-offered rfc4954/auth-encryption-required-538
rfc4954/auth-encryption-required-538-mechanism rfc4954/auth-hard-error-limit robustness/hard-error-limit outlook/oe5-noplaintext'''.split())
def caps(tr):
    return [e['text'][4:] for e in tr if e['dir']=='server' and e['text'][:4] in('250-','250 ')]
def classify(run,x):
    sid=x['id']; v=x['verdict']; r=v.get('reason') or ''; fs=x.get('failed_step') or {}
    act=str(fs.get('actual') or ''); tr=x.get('transcript') or []
    esc='ENHANCEDSTATUSCODES' in caps(tr)
    server='exim' if run.startswith('exim') else 'osm'
    if run=='osm-plain-ca' and ('AUTH is not advertised' in r or re.search(r'no line matches 250-AUTH',r) or act.startswith('503 5.5.1 Invalid command: Command not supported') or act.startswith('503')):
        return 'H-TLSPROBE'
    if 'invalid peer certificate: UnknownIssuer' in r:
        return 'OK-NOCA'
    if 'STARTTLS is not advertised' in r and run.endswith('starttls'):
        return 'STARTTLS-IN-TLS'
    if sid=='starttls/starttls-not-offered':
        return 'PROFILE'
    if 'received corrupt message of type InvalidContentType' in r:
        return 'REAL-EXIM-TLS-CLEARTEXT'
    if sid.startswith('robustness/smuggling-'):
        return 'SMUGGLING'
    if sid in PROFILE_IDS and (re.search(r'AUTH is advertised|no line matches 250-AUTH|did not close the connection|code 535 is not 538|code 334 is not 504',r) or ('hard-error-limit' in sid and server=='osm' and 'Pipelining' in act)):
        if 'hard-error-limit' in sid and 'Pipelining' in act: return 'PIPELINING'
        return 'PROFILE'
    if sid=='robustness/hard-error-limit' and server=='osm':
        return 'PIPELINING'
    if act.startswith('530') and ('is not' in r or 'does not match 250' in r):
        return 'MAIL-530'
    if sid in ('rfc4954/auth-ir-to-server-first-cram-md5','mechanisms/cram-md5/initial-response-refused'):
        return 'REAL-4954-IR-501'
    if sid=='mechanisms/plain/authzid-other' and act.startswith('235'):
        return 'REAL-4616-AUTHZID'
    if re.search(r'does not match 535 5\.7\.8 Error: authentication failed$',r):
        return 'POSTFIX-TEXT'
    if 'no enhanced status code' in r or re.search(r'line ".*" does not match \d{3} \d\.\d+\.\d+ \*',r):
        if not esc: return 'ENH-NOEXT'
        if re.match(r'^\d{3} [245]\.\d{1,3}\.\d{1,3} ',act): return 'ENH-SHOULD'
        return 'REAL-2034-ENH-MISSING'
    if re.search(r'enhanced code \S+ does not match',r):
        return 'ENH-SHOULD'
    if sid=='rfc4954/seed-postfix-full-session':
        return 'EHLO-ORDER'
    if sid in ('rfc4954/auth-no-mechanism','robustness/nul-in-command'):
        return 'CODE-CHOICE'
    if sid=='robustness/invalid-utf8':
        return 'ROBUSTNESS-NO-MUST'
    if sid=='rfc4954/auth-response-over-limit' and server=='exim':
        return 'SCENARIO-LOGIC'
    if sid in ('rfc4954/auth-response-12288-octets-accepted',):
        return 'LIMIT-12288'
    if sid in ('robustness/auth-line-12288','rfc4954/auth-initial-response-over-limit','robustness/line-60k') and ('peer closed connection' in r or 'server closed the connection' in r):
        return 'CLOSE-AFTER-500'
    if sid in ('starttls/injection-ehlo-after-starttls','starttls/injection-auth-after-starttls') and 'Pipelining' in act:
        return 'PIPELINING'
    return 'UNCLASSIFIED'
def evidence(x,k=3):
    tr=x.get('transcript') or []
    lines=[('C: ' if e['dir']=='client' else 'S: ' if e['dir']=='server' else '') + e['text'][:110] for e in tr if e['dir'] in('client','server') and not e['text'].startswith(('250-'))]
    return lines[-k:]
res=[]
for srv,run,desc in RUNS:
    d=json.load(open(D+run+'.json'))
    for x in d['results']:
        if x['verdict']['kind'] in('fail','error'):
            res.append((srv,run,x['id'],x['verdict']['kind'],classify(run,x),x))
if __name__=='__main__':
    c=collections.Counter((r[1],r[4]) for r in res)
    for k in sorted(c): print(k,c[k])
    for r in res:
        if r[4]=='UNCLASSIFIED':
            x=r[5]; print('UNCL',r[1],r[2],x['verdict']['reason'][:150],'||',str((x.get('failed_step') or {}).get('actual'))[:100])
