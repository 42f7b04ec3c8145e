// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Strata",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "strata", targets: ["strata"]),
        .library(name: "StrataCore", targets: ["StrataCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(name: "CGlibcExtras"),
        // SHA-256 on the x86 SHA extensions, two pages at a time (used when the CPU has them).
        .target(name: "CStrataHash"),
        // Ctrl-C and SIGTERM recorded by a C signal handler, so that long commands stop cleanly.
        .target(name: "CStrataSignals"),
        .target(
            name: "StrataCore",
            dependencies: [
                "CZstd",
                "CGlibcExtras",
                "CStrataHash",
                "CStrataSignals",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        .executableTarget(
            name: "strata",
            dependencies: [
                "StrataCore",
                "CGlibcExtras",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "StrataCoreTests",
            dependencies: ["StrataCore", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .testTarget(
            name: "StrataEndToEndTests",
            dependencies: ["StrataCore", "strata"]
        ),
    ],
    swiftLanguageModes: [.v5]
)
