#!/usr/bin/env bash
# iOS: builds the static library for devices and simulators (and macOS, so
# that `swift test` runs the package's XCTests on the Mac), wraps it with
# the generated C headers in bindings/swift/build/DeviceTrustFFI.xcframework,
# and copies the generated Swift into the Swift package (bindings/swift).
# Needs macOS with Xcode. Not run in CI here (no Swift toolchain here).
set -euo pipefail
cd "$(dirname "$0")/../.."

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
    cargo build --locked --profile mobile -p devicetrust-ffi --target "$t"
done
target="${CARGO_TARGET_DIR:-target}"

# Swift sources and headers from an unstripped host build.
./bindings/scripts/generate.sh
gen=bindings/generated/swift
pkg=bindings/swift
build="$pkg/build"
rm -rf "$build" && mkdir -p "$build/headers" "$build/sim" "$build/macos"
cp "$gen"/*.h "$build/headers/"
# The one FFI module, DeviceTrustFFI.
cp "$gen/DeviceTrustFFI.modulemap" "$build/headers/module.modulemap"

lipo -create \
    "$target"/aarch64-apple-ios-sim/mobile/libdevicetrust_ffi.a \
    "$target"/x86_64-apple-ios/mobile/libdevicetrust_ffi.a \
    -output "$build/sim/libdevicetrust_ffi.a"
lipo -create \
    target/aarch64-apple-darwin/mobile/libdevicetrust_ffi.a \
    target/x86_64-apple-darwin/mobile/libdevicetrust_ffi.a \
    -output "$build/macos/libdevicetrust_ffi.a"
xcodebuild -create-xcframework \
    -library "$target"/aarch64-apple-ios/mobile/libdevicetrust_ffi.a -headers "$build/headers" \
    -library "$build/sim/libdevicetrust_ffi.a" -headers "$build/headers" \
    -library "$build/macos/libdevicetrust_ffi.a" -headers "$build/headers" \
    -output "$build/DeviceTrustFFI.xcframework"

# The SDK's one namespace: one Swift file, the module DeviceTrust.
cp "$gen/DeviceTrust.swift" "$pkg/Sources/DeviceTrust/"
echo "XCFramework: $build/DeviceTrustFFI.xcframework; Swift package: $pkg"
echo "Test on macOS: DEVICETRUST_SERVER=\$PWD/target/debug/devicetrust-server swift test --package-path $pkg"
