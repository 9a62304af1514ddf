// swift-tools-version:6.0
import PackageDescription

// Layers point one way: C shims → safe wrappers (IOLoop, SSH, XML) → NETCONF →
// NETCONFSSH → Junos → Bundle → Simulator/Agent → the care-agent executable;
// Bundle → SupportStore → SupportServer → the care-support executable (ConfigurationSyntax below both).
let package = Package(
    name: "care-agent",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "care-agent", targets: ["care-agent"]),
        .executable(name: "care-support", targets: ["care-support"]),
        .executable(name: "care-netconf-relay", targets: ["care-netconf-relay"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // The support side (care-support): HTTPS intake, SQLite and PostgreSQL stores.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // Ansible YAML inventories (the agent's [inventory NAME] type = ansible).
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // C shims: system libraries found by pkg-config, plus static inline wrappers for macros.
        .systemLibrary(name: "CLibSSH2", pkgConfig: "libssh2", providers: [.apt(["libssh2-1-dev"])]),
        .systemLibrary(name: "CLibXML2", pkgConfig: "libxml-2.0", providers: [.apt(["libxml2-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLibCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        .target(name: "CEpoll"),
        // Linked into the executables: refuses to start without /proc (see its source file).
        .target(name: "CRuntimeRequirements"),

        // The INI-style syntax of agent.conf and support.conf (sections of `key = value`, file:line errors).
        .target(name: "ConfigurationSyntax"),

        // Safe wrappers.
        .target(name: "IOLoop", dependencies: ["CEpoll"]),
        .target(name: "XML", dependencies: ["CLibXML2"]),
        .target(name: "SSH", dependencies: [
            "CLibSSH2", "IOLoop",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // Protocol: transport-agnostic NETCONF, then NETCONF bound to SSH.
        .target(name: "NETCONF", dependencies: ["XML", .product(name: "Logging", package: "swift-log")]),
        .target(name: "NETCONFSSH", dependencies: ["NETCONF", "SSH", "IOLoop", .product(name: "Logging", package: "swift-log")]),

        // Domain: Junos model and parsers (XML only: no SSH, no NETCONF).
        .target(name: "Junos", dependencies: ["XML"]),

        // Health snapshot bundles.
        .target(name: "Bundle", dependencies: [
            "Junos", "XML", "CZlib",
            .product(name: "Crypto", package: "swift-crypto"),
        ]),

        // Support-side reports over bundles: bug notifications, EOL/EOS/EOE, health. Never SSH.
        .target(name: "Reports", dependencies: ["Junos", "Bundle", "XML", .product(name: "Crypto", package: "swift-crypto")]),

        // Device simulator: serves captured replies as a Junos NETCONF device.
        .target(name: "Simulator", dependencies: ["NETCONF", "XML", "Bundle", "IOLoop"]),

        // The agent: config, inventory, scheduler, collector, outbox, control.
        .target(name: "Agent", dependencies: [
            "NETCONFSSH", "IOLoop", "CEpoll", "Junos", "Bundle", "CLibCurl", "ConfigurationSyntax",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Yams", package: "Yams"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        ]),

        // sshd's netconf subsystem for the simulated fleet: a byte relay to the fleet process, run
        // once per session, so linked statically (0.4 ms to start, not 3 ms: see its main.c).
        .executableTarget(name: "care-netconf-relay", linkerSettings: [.unsafeFlags(["-static-executable"])]),
        .executableTarget(name: "care-agent", dependencies: [
            "CRuntimeRequirements", "Agent", "Simulator", "NETCONFSSH", "Junos", "Bundle", "Reports",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], linkerSettings: [
            // Release: linked by the toolchain's lld with packed relative relocations (DT_RELR,
            // glibc 2.36): 18 KB of relocations instead of 2.2 MB read at every start, ~5 MiB
            // less resident at a fleet collection's peak (docs/performance.md). gold, the
            // default, cannot write them. And without exporting our 14,500 Swift symbols
            // (the static runtime's link arguments ask for -export-dynamic; nothing loads
            // plugins or looks our symbols up by name): a 1.4 MB dynamic symbol table fewer,
            // ~3 MiB less at the peak.
            .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                          "-Xlinker", "--no-export-dynamic"], .when(configuration: .release)),
        ]),

        // Release-mode benchmarks (swift run -c release care-agent-bench).
        .executableTarget(name: "care-agent-bench", dependencies: ["Junos", "XML", "CLibXML2"]),

        // Fuzz target for the framing decoders and client session (see scripts/fuzz-netconf.sh).
        .executableTarget(name: "NETCONFFuzz", dependencies: ["NETCONF", "FuzzDriver"]),
        // Fuzz targets for the XML parsers, the redactor and the bundle reader (scripts/fuzz-all.sh).
        .executableTarget(name: "CareFuzz", dependencies: ["Junos", "XML", "Bundle", "SSH", "FuzzDriver"]),
        // libFuzzer's driver, shared by the fuzz executables (only in -DFUZZING builds).
        .target(name: "FuzzDriver"),

        // Test support: a real OpenSSH sshd harness and fixture paths.
        .target(name: "TestSupport", dependencies: ["IOLoop", .product(name: "Logging", package: "swift-log")], path: "Tests/TestSupport"),

        // The support side: store (SQLite, PostgreSQL), HTTPS intake, the care-support executable.
        // Never imports SSH, NETCONF or Agent: bundles are verified with the Bundle target alone.
        .target(name: "SupportStore", dependencies: [
            "Bundle", "Junos",
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "PostgresNIO", package: "postgres-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "SupportServer", dependencies: [
            "SupportStore", "Bundle", "ConfigurationSyntax", "Reports",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .executableTarget(name: "care-support", dependencies: [
            "CRuntimeRequirements", "SupportServer", "SupportStore", "Bundle", "Reports",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "IOLoopTests", dependencies: ["IOLoop"]),
        .testTarget(name: "XMLTests", dependencies: ["XML", "CLibXML2", "TestSupport"]),
        .testTarget(name: "NETCONFTests", dependencies: ["NETCONF", "IOLoop", "TestSupport"]),
        .testTarget(name: "SSHTests", dependencies: ["SSH", "IOLoop", "NETCONFSSH", "NETCONF", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "JunosTests", dependencies: ["Junos", "XML", "TestSupport"]),
        .testTarget(name: "BundleTests", dependencies: ["Bundle", "Junos", "TestSupport"]),
        .testTarget(name: "SimulatorTests", dependencies: ["Simulator", "Bundle", "NETCONF", "TestSupport"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Bundle", "Junos", "Simulator", "TestSupport"]),
        .testTarget(name: "AgentTests", dependencies: ["Agent", "Bundle", "NETCONF", "NETCONFSSH", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "ConfigurationSyntaxTests", dependencies: ["ConfigurationSyntax"]),
        .testTarget(name: "SupportStoreTests", dependencies: ["SupportStore", "Bundle", "Junos", "TestSupport"]),
        // Agent only here: the agent's real uploader talks to the intake.
        .testTarget(name: "SupportServerTests", dependencies: ["SupportServer", "SupportStore", "Bundle", "Agent", "Junos", "Reports", "TestSupport"]),
    ]
)
