#!/usr/bin/env bash
# Android: builds the library for each ABI with cargo-ndk and lays out
# jniLibs and the generated Kotlin for an Android library module (AAR).
# Needs the Android NDK (ANDROID_NDK_HOME) and `cargo install cargo-ndk`, and
# the rustup targets below. Not run in CI here (no NDK on this machine).
#
#   bindings/scripts/build-android.sh [OUT]     (default: bindings/android)
#
# OUT/src/main/jniLibs/<abi>/libdevicetrust_ffi.so
# OUT/src/main/kotlin/com/devicetrust/sdk/devicetrust.kt
# Add to the module's build.gradle.kts:
#   implementation("net.java.dev.jna:jna:5.17.0@aar")
#   implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.10.2")
set -euo pipefail
cd "$(dirname "$0")/../.."
out="${1:-bindings/android}"

rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
# Stripped, size-tuned release for the device; 16 KB page alignment for Android 15+.
RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-Wl,-z,max-page-size=16384" \
cargo ndk -t arm64-v8a -t armeabi-v7a -t x86_64 --platform 24 \
    -o "$out/src/main/jniLibs" build --locked --profile mobile -p devicetrust-ffi

# Bindings come from an unstripped host build (uniffi reads its metadata).
./bindings/scripts/generate.sh
mkdir -p "$out/src/main/kotlin"
cp -R bindings/generated/kotlin/. "$out/src/main/kotlin/"
echo "Android library layout in $out"
