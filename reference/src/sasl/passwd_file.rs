//! Dovecot's passwd-file format (`user:{SCHEME}secret[:uid:gid:...]`): skeleton.
