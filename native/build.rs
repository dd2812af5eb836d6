// The web assets are embedded at compile time; rebuild when any of them (including a freshly
// built web/pkg) changes.
fn main() {
    println!("cargo:rerun-if-changed=../web");
}
