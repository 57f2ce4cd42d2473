// swift-tools-version: 6.1
// MiniGPT: a small decoder-only transformer engine in Swift and a real-time robot decision daemon.
// Module map and import rules: ../shared/DESIGN.md (engine knows nothing of robots, sockets or sim).
import PackageDescription
import Foundation

// Build flavours (environment variables read when SwiftPM evaluates this manifest):
// - default: one binary for the machine kind. The C kernels are compiled without -march; each fast
//   kernel carries its own target attribute and is chosen at run time from the CPU's features
//   (cpuid / AT_HWCAP, Sources/CMiniGPTKernels/kernels.c), so they use AVX2 / AVX-512 / VNNI / sdot
//   where the CPU has them and never an instruction it lacks. Swift code cannot dispatch at run
//   time, so on x86-64 it targets Haswell = x86-64-v3 (AVX2, FMA, F16C, BMI2), which every x86 CPU
//   this project runs on (Zen 3, Zen 4) has: without hardware FMA, Swift's fused `addProduct`
//   becomes one libm fmaf call per lane (training 133 instead of ≈ 12 000–23 000 tokens/s,
//   docs/performance.md). On arm64 the baseline already has NEON and FMA: no -target-cpu.
// - MINIGPT_PORTABLE=1: any x86-64 (Swift at the SSE2 baseline, C kernels as above), for pre-AVX2
//   CPUs such as Atom-class robot boards: decode stays fast (C kernels), Swift training is not.
// - MINIGPT_NATIVE=1: host-tuned (C -march=native, Swift -target-cpu native), for a binary that
//   only ever runs on this machine; MINIGPT_PORTABLE wins when both are set.
// At run time MINIGPT_KERNELS=portable|avx2|avx512|vnni|avxvnni|neon|dotprod forces a kernel path.
let environment = ProcessInfo.processInfo.environment
func flag(_ name: String) -> Bool { environment[name].map { $0 != "" && $0 != "0" } ?? false }
let portable = flag("MINIGPT_PORTABLE"), native = flag("MINIGPT_NATIVE") && !portable
#if arch(x86_64)
let defaultSwiftCPU = ["-target-cpu", "haswell"]  // = x86-64-v3 (swiftc does not take the -v3 name)
#else
let defaultSwiftCPU: [String] = []
#endif
let hostCPU: [String] = native ? ["-target-cpu", "native"] : portable ? [] : defaultSwiftCPU

let engineSwiftSettings: [SwiftSetting] = [
    .unsafeFlags(["-Ounchecked", "-wmo"] + hostCPU, .when(configuration: .release)),
]
let kernelCSettings: [CSetting] = [
    .unsafeFlags(["-O3", "-ffp-contract=off"] + (native ? ["-march=native"] : [])),
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
        // A model driving the simulator in process through the daemon's DecisionCore (closed-loop
        // evaluation, DAgger data, controller calibration).
        .target(name: "ClosedLoop", dependencies: ["RobotSim", "Runtime", "Cognition", "MiniGPT", "Observation"],
                path: "sim/Sources/ClosedLoop"),
        // Executables: argument parsing and wiring only.
        .executableTarget(name: "mgpt", dependencies: [
            "MiniGPT", "MiniGPTTrain", "Runtime", "Cognition", "Observation", "Wire", "CAllocCounter",
            "ClosedLoop", "RobotSim",
            .product(name: "Histogram", package: "hdrhistogram-swift"),
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        // mgpt-sim also wires the engine in for `mgpt-sim dagger` (the RobotSim library does not).
        .executableTarget(name: "mgpt-sim", dependencies: [
            "RobotSim", "Observation", "Wire", "MiniGPT", "Cognition", "Runtime", "ClosedLoop",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ], path: "sim/Sources/mgpt-sim"),
        .executableTarget(name: "mgptd", dependencies: [
            "Runtime", "MiniGPT", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(name: "CognitionTests", dependencies: ["Cognition", "MiniGPT", "Observation"]),
        .testTarget(name: "RuntimeTests", dependencies: ["Runtime", "Cognition", "MiniGPT", "Observation", "Wire", "MCAP", "CAllocCounter"], exclude: ["py"]),
        .testTarget(name: "MiniGPTTests", dependencies: ["MiniGPT", "CAllocCounter"]),
        .testTarget(name: "MiniGPTTrainTests", dependencies: ["MiniGPTTrain", "MiniGPT"]),
        .testTarget(name: "RobotSimTests", dependencies: ["RobotSim", "Observation", "CAllocCounter"], exclude: ["py"]),
        .testTarget(name: "ClosedLoopTests", dependencies: ["ClosedLoop", "Cognition", "RobotSim"]),
        .testTarget(name: "WireTests", dependencies: ["Wire", "CAllocCounter"]),
        .testTarget(name: "MCAPTests", dependencies: ["MCAP", "CAllocCounter"]),
    ]
)
