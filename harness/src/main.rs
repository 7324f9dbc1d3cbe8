#![forbid(unsafe_code)]

fn main() {
    println!("authspec {}", env!("CARGO_PKG_VERSION"));
}
