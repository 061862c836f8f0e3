// swift-tools-version:5.9
// The Pooya iOS library: the Rust core as an XCFramework (PooyaCoreFFI), the uniffi-generated
// Swift API over it (PooyaCore), and the platform shells that implement the host hooks
// (PooyaShells). Run ./build-xcframework.sh on macOS first: it builds the XCFramework into
// build/ and places the generated Swift (PooyaCore.swift and the derived records' PooyaCoreModel.swift
// and PooyaProtocol.swift) into Sources/PooyaCore/.
//
// To ship it from a release instead of a local build, replace the binary target's `path:` with
// `url:` and `checksum:` (`swift package compute-checksum PooyaCoreFFI.xcframework.zip`).
import PackageDescription

let package = Package(
    name: "PooyaCore",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "PooyaCore", targets: ["PooyaCore", "PooyaShells"]),
    ],
    targets: [
        .binaryTarget(name: "PooyaCoreFFI", path: "build/PooyaCoreFFI.xcframework"),
        .target(name: "PooyaCore", dependencies: ["PooyaCoreFFI"], path: "Sources/PooyaCore"),
        .target(name: "PooyaShells", dependencies: ["PooyaCore"], path: "Sources/PooyaShells"),
        .testTarget(
            name: "PooyaCoreTests",
            dependencies: ["PooyaCore", "PooyaShells"],
            path: "Tests/PooyaCoreTests"
        ),
    ]
)
