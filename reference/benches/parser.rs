//! Skeleton: the parser benchmark against smtp-proto lands with the codec.
fn main() {}
