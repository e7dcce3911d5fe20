//! Rebuilds the crate when a migration file is added, edited or removed, so the embedded
//! migrations (`strata_db::MIGRATOR`, `sqlx::migrate!`) are never stale.

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
