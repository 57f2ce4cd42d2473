// swift-tools-version: 6.1
// MiniGPT: a small decoder-only transformer engine in Swift and a real-time robot decision daemon.
// Module map and import rules: ../shared/DESIGN.md (engine knows nothing of robots, sockets or sim).
import PackageDescription
import Foundation

// The hot kernels are built for the host CPU by default (AVX-512 on the dev/CI machines: measured
// 52 µs → 32 µs for the default matvec chain). Set MINIGPT_PORTABLE=1 for a binary that runs on
// any x86-64 / arm64 machine of the same OS.
let portable = ProcessInfo.processInfo.environment["MINIGPT_PORTABLE"] != nil
let hostCPU: [String] = portable ? [] : ["-target-cpu", "native"]

let engineSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"] + hostCPU, .when(configuration: .release)),
]
let kernelCSettings: [CSetting] = [
    .unsafeFlags(["-O3", "-ffp-contract=off"] + (portable ? [] : ["-march=native"])),
]

let package = Package(
    name: "MiniGPT",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "MiniGPT", targets: ["MiniGPT"]),
        .library(name: "MiniGPTTrain", targets: ["MiniGPTTrain"]),
        .library(name: "Observation", targets: ["Observation"]),
        .library(name: "RobotSim", targets: ["RobotSim"]),
        .library(name: "Wire", targets: ["Wire"]),
        .executable(name: "mgpt", targets: ["mgpt"]),
        .executable(name: "mgpt-sim", targets: ["mgpt-sim"]),
        .executable(name: "mgptd", targets: ["mgptd"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.1.0"),
    ],
    targets: [
        // Engine: config, model folder I/O, tokenizer, kernels, forward pass, KV cache, sampling.
        .target(name: "CMiniGPTKernels", cSettings: kernelCSettings),
        .target(name: "MiniGPT", dependencies: ["CMiniGPTKernels"], swiftSettings: engineSwiftSettings),
        // Training: forward/backward pairs, AdamW, trainer, evaluation.
        .target(name: "MiniGPTTrain", dependencies: ["MiniGPT"], swiftSettings: engineSwiftSettings),
        // Observation frames and their token encoder, shared by the simulator and the daemon.
        .target(name: "Observation"),
        // The simulated robot world and sensor feeder.
        .target(name: "RobotSim", dependencies: ["Observation"], path: "sim/Sources/RobotSim"),
        // libzmq (Debian: libzmq3-dev) and our thin Swift layer over it.
        // No `pkgConfig:` on purpose: Debian's libzmq.pc drags in `-isystem /usr/include/mit-krb5`,
        // which SwiftPM refuses with a warning on every build; zmq.h and libzmq.so sit on the
        // default paths of every distribution we target.
        .systemLibrary(name: "CZeroMQ", providers: [.apt(["libzmq3-dev"]), .brew(["zeromq"])]),
        .target(name: "Wire", dependencies: ["CZeroMQ"]),
        // MCAP recording format (https://mcap.dev/spec): unchunked writer, tolerant reader.
        .target(name: "MCAP"),
        // Intent grammar, uncertainty signals and the meta-controller that gates the model's proposals.
        .target(name: "Cognition", dependencies: ["MiniGPT", "Observation"], swiftSettings: engineSwiftSettings),
        // robot.json, the real-time decision loop, watchdog, recorder and replay.
        // Counts heap allocations in-process (malloc interposition, glibc only) for the no-allocation tests.
        .target(name: "CAllocCounter"),
        .target(name: "CRealTime"),
        .target(name: "Runtime", dependencies: ["MiniGPT", "Cognition", "Observation", "Wire", "MCAP", "CRealTime", "CAllocCounter"],
                swiftSettings: engineSwiftSettings),
        // Executables: argument parsing and wiring only.
        .executableTarget(name: "mgpt", dependencies: [
            "MiniGPT", "MiniGPTTrain", "Runtime", "Cognition", "Observation", "Wire", "CAllocCounter",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // mgpt-sim also wires the engine in for `mgpt-sim dagger` (the RobotSim library does not).
        .executableTarget(name: "mgpt-sim", dependencies: [
            "RobotSim", "Observation", "Wire", "MiniGPT", "Cognition", "Runtime",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "sim/Sources/mgpt-sim"),
        .executableTarget(name: "mgptd", dependencies: [
            "Runtime", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "CognitionTests", dependencies: ["Cognition", "MiniGPT", "Observation"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Cognition", "MiniGPT", "Observation", "Wire", "MCAP", "CAllocCounter"], exclude: ["py"]),
        .testTarget(name: "MiniGPTTests", dependencies: ["MiniGPT", "CAllocCounter"]),
        .testTarget(name: "MiniGPTTrainTests", dependencies: ["MiniGPTTrain", "MiniGPT"]),
        .testTarget(name: "RobotSimTests", dependencies: ["RobotSim", "Observation", "CAllocCounter"], exclude: ["py"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "CAllocCounter"]),
        .testTarget(name: "MCAPTests", dependencies: ["MCAP", "CAllocCounter"]),
    ]
)
