#!/usr/bin/env bash
# Android: builds the library for each ABI with cargo-ndk and writes it,
# with the generated Kotlin, into the Android library module
# bindings/android/devicetrust (its build.gradle.kts reads both from
# generated/; the key store, session sealer and manifest are committed in
# its src/main). Needs the Android NDK (ANDROID_NDK_HOME) and
# `cargo install cargo-ndk`, and the rustup targets below. Not run in CI
# here (no NDK on this machine); CI compiles the module's Kotlin against the
# Android API jar instead (bindings/android/compile-check).
#
#   bindings/scripts/build-android.sh [OUT]   (default: bindings/android/devicetrust/generated)
#
# OUT/jniLibs/<abi>/libdevicetrust_ffi.so
# OUT/kotlin/com/devicetrust/sdk/devicetrust.kt
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-bindings/android/devicetrust/generated}"
rm -rf "$out/jniLibs" "$out/kotlin"

rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
# Panic locations name registry sources as `crate-x.y.z/src/…` and this
# tree's as `core/src/…`, not by the builder's absolute paths: 12 KB smaller
# (docs/PERFORMANCE.md, "Mobile library size") and no home folder in the APK.
remap=""
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
    remap="$remap --remap-path-prefix=${dir%/}="
done
remap="$remap --remap-path-prefix=$PWD="
# Stripped, size-tuned release for the device; 16 KB page alignment for Android 15+.
RUSTFLAGS="${RUSTFLAGS:-}$remap -C link-arg=-Wl,-z,max-page-size=16384" \
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform 28 \
    -o "$out/jniLibs" build --locked --profile mobile -p devicetrust-ffi

# Bindings come from an unstripped host build (uniffi reads its metadata).
./bindings/scripts/generate.sh
mkdir -p "$out/kotlin"
cp -R bindings/generated/kotlin/. "$out/kotlin/"
echo "Android library module's generated sources and libraries in $out"
