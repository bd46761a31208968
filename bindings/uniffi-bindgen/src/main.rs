//! `cargo run -p uniffi-bindgen -- generate --library …`: the generator at
//! exactly the workspace's uniffi version, so no global install is needed,
//! plus one finishing step on what it wrote: errors say their message.
//!
//! uniffi 0.32 gives an error enum with fields (the SDK's errors keep
//! `attempts_left`, `retry_after_secs`, …) a message made of its fields only
//! (Kotlin `message` = `"attemptsLeft=3"`, Python `str(e)` likewise, empty
//! for a variant without fields; Swift `localizedDescription` =
//! `String(reflecting:)`). The errors export Rust's `Display`
//! (`#[uniffi::export(Display)]`), which uniffi turns into Kotlin
//! `toString()` and Swift `description` but does not use for the message.
//! For every error that exports it, this step makes
//! - Kotlin: each variant's `message` return `toString()` (Rust's Display);
//! - Swift: the enum `CustomStringConvertible`, so `localizedDescription`
//!   (uniffi's `errorDescription` = `String(reflecting: self)`) is Display;
//! - Python: `__str__` call Rust's Display.
//!
//! The binding tests check the result (Kotlin `ErrorMessageTest`, Python
//! `test_errors.py`), so a uniffi upgrade that changes the generated shape
//! fails there rather than silently.

use std::path::{Path, PathBuf};

fn main() {
    uniffi::uniffi_bindgen_main();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) != Some("generate") {
        return;
    }
    let Some(out_dir) = args
        .iter()
        .position(|a| a == "--out-dir" || a == "-o")
        .and_then(|i| args.get(i + 1))
    else {
        return;
    };
    let mut files = Vec::new();
    collect(Path::new(out_dir), &mut files);
    for file in files {
        let patch: fn(&str) -> Option<String> = match file.extension().and_then(|e| e.to_str()) {
            Some("kt") => kotlin,
            Some("swift") => swift,
            Some("py") => python,
            _ => continue,
        };
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if let Some(patched) = patch(&text) {
            if let Err(e) = std::fs::write(&file, patched) {
                eprintln!("uniffi-bindgen: cannot write {}: {e}", file.display());
                std::process::exit(1);
            }
        }
    }
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Names of the error types whose Rust `Display` is exported, from the FFI
/// function uniffi generates for it (`…_fn_method_<lowercase name>_uniffi_trait_display`),
/// matched against `candidates` (the error types the file declares).
fn with_display<'a>(text: &str, candidates: &[&'a str]) -> Vec<&'a str> {
    candidates
        .iter()
        .copied()
        .filter(|name| {
            text.contains(&format!(
                "_fn_method_{}_uniffi_trait_display",
                name.to_lowercase()
            ))
        })
        .collect()
}

/// Kotlin: in each error class that overrides `toString()` with Rust's
/// Display, every variant's `message` returns it.
fn kotlin(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut changed = false;
    while let Some(start) = rest.find("sealed class ") {
        let header_end = rest[start..].find('\n').map_or(rest.len(), |i| start + i);
        if !rest[start..header_end].contains("kotlin.Exception()") {
            // Not an error (a sealed enum): scan on after its header.
            out.push_str(&rest[..header_end]);
            rest = &rest[header_end..];
            continue;
        }
        let end = rest[start..]
            .find("companion object ErrorHandler")
            .map_or(rest.len(), |i| start + i);
        out.push_str(&rest[..start]);
        let body = &rest[start..end];
        if body.contains("override fun toString(): String") {
            let lines: Vec<&str> = body.split_inclusive('\n').collect();
            let mut i = 0;
            while i < lines.len() {
                out.push_str(lines[i]);
                let next_is_getter = lines
                    .get(i + 1)
                    .is_some_and(|l| l.trim_start().starts_with("get() = \""));
                if lines[i].trim() == "override val message" && next_is_getter {
                    let getter = lines[i + 1];
                    let indent = &getter[..getter.len() - getter.trim_start().len()];
                    out.push_str(indent);
                    out.push_str("get() = toString()\n");
                    changed = true;
                    i += 2;
                } else {
                    i += 1;
                }
            }
        } else {
            out.push_str(body);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

/// Swift: the error enums that have Rust's `description` conform to
/// `CustomStringConvertible`, which `String(reflecting:)` then uses.
fn swift(text: &str) -> Option<String> {
    let errors: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            let l = l
                .trim_start()
                .strip_prefix("public ")
                .unwrap_or(l.trim_start());
            let l = l.strip_prefix("indirect ").unwrap_or(l);
            l.strip_prefix("enum ")?
                .split_once(": Swift.Error")
                .map(|(name, _)| name.trim())
        })
        .collect();
    let errors = with_display(text, &errors);
    if errors.is_empty() {
        return None;
    }
    let mut out = text.to_owned();
    out.push_str("\n// devicetrust (bindings/uniffi-bindgen): Rust's Display as the errors' localizedDescription.\n");
    for name in errors {
        out.push_str(&format!("extension {name}: CustomStringConvertible {{}}\n"));
    }
    Some(out)
}

/// Python: `str(error)` is Rust's Display.
fn python(text: &str) -> Option<String> {
    let errors: Vec<&str> = text
        .lines()
        .filter_map(|l| {
            l.strip_prefix("class ")?
                .strip_suffix("(Exception):")
                .filter(|n| !n.starts_with('_'))
        })
        .collect();
    let errors = with_display(text, &errors);
    if errors.is_empty() {
        return None;
    }
    let mut out = text.to_owned();
    out.push_str(
        "\n\n# devicetrust (bindings/uniffi-bindgen): Rust's Display as str(error).\n\
         def _devicetrust_display(converter, ffi_display):\n    \
         def __str__(self):\n        \
         return _UniffiFfiConverterString.lift(_uniffi_rust_call(ffi_display, converter.lower(self)))\n    \
         return __str__\n",
    );
    for name in errors {
        let lower = name.to_lowercase();
        let function = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .find(|w| {
                w.starts_with("uniffi_")
                    && w.ends_with(&format!("_fn_method_{lower}_uniffi_trait_display"))
            })?;
        out.push_str(&format!(
            "{name}.__str__ = _devicetrust_display(_UniffiFfiConverterType{name}, _UniffiLib.{function})\n"
        ));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KOTLIN: &str = "\
sealed class SignInStep {
    data class A(val x: Int) : SignInStep() {}
}
sealed class DeviceTrustException: kotlin.Exception() {
    class OtpInvalid(
        val `attemptsLeft`: kotlin.UInt
        ) : DeviceTrustException() {
        override val message
            get() = \"attemptsLeft=${ `attemptsLeft` }\"
    }
    class OtpExpired(
        ) : DeviceTrustException() {
        override val message
            get() = \"\"
    }
    override fun toString(): String {
        return FfiConverterString.lift(x)
    }
    companion object ErrorHandler : UniffiRustCallStatusErrorHandler<DeviceTrustException> {
    }
}
sealed class OtherException: kotlin.Exception() {
    class A(
        ) : OtherException() {
        override val message
            get() = \"\"
    }
    companion object ErrorHandler : UniffiRustCallStatusErrorHandler<OtherException> {
    }
}
";

    #[test]
    fn kotlin_messages_use_display_only_where_it_is_exported() {
        let patched = kotlin(KOTLIN).expect("patched");
        let (first, second) =
            patched.split_at(patched.find("sealed class OtherException").unwrap());
        assert_eq!(first.matches("get() = toString()").count(), 2, "{first}");
        assert!(!first.contains("attemptsLeft=$"));
        // Without an exported Display, toString() would call message: untouched.
        assert!(second.contains("get() = \"\""));
        assert!(!second.contains("toString()"));
    }

    #[test]
    fn swift_and_python_get_display_for_errors_that_export_it() {
        let swift_text = "public enum DeviceTrustError: Swift.Error, Equatable {\n}\n\
                          enum Plain: Swift.Error {\n}\n\
                          uniffi_devicetrust_core_fn_method_devicetrusterror_uniffi_trait_display(";
        let patched = swift(swift_text).unwrap();
        assert!(patched.contains("extension DeviceTrustError: CustomStringConvertible {}"));
        assert!(!patched.contains("extension Plain"));

        let py = "class DeviceTrustError(Exception):\n    pass\n\
                  _UniffiLib.uniffi_devicetrust_core_fn_method_devicetrusterror_uniffi_trait_display.restype = x\n";
        let patched = python(py).unwrap();
        assert!(patched.contains(
            "DeviceTrustError.__str__ = _devicetrust_display(_UniffiFfiConverterTypeDeviceTrustError, \
             _UniffiLib.uniffi_devicetrust_core_fn_method_devicetrusterror_uniffi_trait_display)"
        ));
        assert_eq!(python("class Plain(Exception):\n"), None);
    }
}
