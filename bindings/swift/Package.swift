// swift-tools-version:5.9
// The devicetrust SDK for iOS: the uniffi-generated DeviceTrust.swift
// (copied into Sources/DeviceTrust by bindings/scripts/build-xcframework.sh,
// not committed) and the hand-written Apple platform code in
// Sources/DeviceTrust/Apple (the Secure Enclave key store, App Attest, the
// Keychain session sealer, the state folder; committed) compiled as one
// module, so an app needs only `import DeviceTrust`, over the Rust library
// and its C module DeviceTrustFFI in build/DeviceTrustFFI.xcframework.
import PackageDescription

let package = Package(
    name: "DeviceTrust",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "DeviceTrust", targets: ["DeviceTrust"]),
    ],
    targets: [
        .binaryTarget(name: "DeviceTrustFFI", path: "build/DeviceTrustFFI.xcframework"),
        .target(name: "DeviceTrust", dependencies: ["DeviceTrustFFI"], path: "Sources/DeviceTrust", exclude: ["README.md"]),
        .testTarget(name: "DeviceTrustTests", dependencies: ["DeviceTrust"], path: "Tests/DeviceTrustTests"),
    ]
)
