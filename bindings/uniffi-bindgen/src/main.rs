//! `cargo run -p uniffi-bindgen -- generate --library …`: the generator at
//! exactly the workspace's uniffi version, so no global install is needed.
fn main() {
    uniffi::uniffi_bindgen_main()
}
