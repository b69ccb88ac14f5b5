//! Rebuild when a migration is added: `sqlx::migrate!` embeds each backend's folder at
//! compile time.

fn main() {
    for backend in ["sqlite", "postgres", "mysql"] {
        println!("cargo:rerun-if-changed=migrations/{backend}");
    }
}
