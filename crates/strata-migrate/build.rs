//! Rebuilds the crate when a migration file is added, edited or removed, so the embedded
//! migrations (`sqlx::migrate!`) are never stale.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
