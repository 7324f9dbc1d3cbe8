//! Configuration in Postfix's vocabulary: main.cf syntax, `-o name=value` overrides,
//! server (`smtpd_*`) and client (`smtp_*`) parameters, and the SASL security options
//! that filter mechanisms.
