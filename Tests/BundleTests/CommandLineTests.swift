import Foundation
import Testing
import TestSupport
@testable import Bundle

/// Runs the built care-agent binary (it sits next to the test bundle in .build/<config>/).
enum CareAgentBinary {
    static var url: URL? {
        let fromTests = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        var candidates = [fromTests.appendingPathComponent("care-agent"),
                          fromTests.deletingLastPathComponent().appendingPathComponent("care-agent")]
        candidates.append(Fixtures.packageRoot.appendingPathComponent(".build/debug/care-agent"))
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// unshare's arguments before a command to run with /proc hidden: a mount namespace of its
    /// own with an empty tmpfs over /proc.
    static let hidingProcArguments = ["--mount", "--propagation", "private", "/bin/sh", "-c",
                                      "mount -t tmpfs none /proc && exec \"$0\" \"$@\""]

    /// Runs the binary; `hidingProc` runs it in a mount namespace of its own with an empty tmpfs
    /// over /proc (as in a chroot or a minimal container without /proc).
    static func run(_ arguments: [String], environment: [String: String] = [:], hidingProc: Bool = false) throws -> Result {
        guard let url else {
            throw BinaryMissing()
        }
        let process = Process()
        if hidingProc {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
            process.arguments = hidingProcArguments + [url.path] + arguments
        } else {
            process.executableURL = url
            process.arguments = arguments
        }
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read before waiting so a large output cannot block the child on a full pipe.
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    struct BinaryMissing: Error, CustomStringConvertible {
        var description: String { "care-agent binary not found next to the tests: build it (swift build) before running these tests" }
    }
}

/// `bundle verify` streams the archive: a bundle unpacking to 128 MiB is verified in far less
/// memory than it unpacks to (it held it twice over: inflated, then each member copied).
@Suite struct VerifyMemoryTests {
    @Test func verifyingABigBundleDoesNotHoldItsContents() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var contents = try Sample.contents()
        contents.rawReplies.append(RawReply(rpc: "get-zeros", bytes: [UInt8](repeating: 0x30, count: 128 << 20)))
        let file = try BundleWriter(directory: dir.url, key: Sample.key).write(contents)
        let binary = try #require(CareAgentBinary.url)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/time")
        process.arguments = ["-f", "peak-kib %M", binary.path, "bundle", "verify", file.path]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(stderr)")
        let peak = stderr.split(separator: "\n").last { $0.hasPrefix("peak-kib ") }.flatMap { Int($0.dropFirst(9)) } ?? .max
        #expect(peak < 96 * 1024, "bundle verify peaked at \(peak) KiB for a bundle unpacking to 128 MiB")
    }
}

@Suite(.serialized) struct CrashSafetyTests {
    /// Kills a real writer process at every step and checks the directory holds no bundle or one
    /// whole, verifying bundle, and nothing a reader would take for a bundle besides.
    @Test(arguments: BundleWriter.CrashStep.allCases)
    func writerKilledAtAnyStepLeavesAWholeBundleOrNone(step: BundleWriter.CrashStep) throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let source = dir.url.appendingPathComponent("source.tar.gz")
        try Data(try Sample.encoded()).write(to: source)
        let state = dir.url.appendingPathComponent("state")
        let key = try AgentKey.loadOrCreate(stateDirectory: state)
        let out = dir.url.appendingPathComponent("out")

        let result = try CareAgentBinary.run(
            ["bundle", "rewrite", source.path, "--directory", out.path, "--state-dir", state.path],
            environment: [BundleWriter.crashEnvironmentVariable: step.rawValue])
        #expect(result.status == 137, "writer should have died at \(step.rawValue): \(result.stderr)")

        let names = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
        let bundles = names.filter(BundleFileName.isBundle)
        let others = names.filter { !BundleFileName.isBundle($0) }
        #expect(others.allSatisfy(BundleFileName.isTemporary), "unexpected files: \(others)")
        let linked = [.linked, .tempRemoved, .directorySynced].contains(step)
        #expect(bundles.count == (linked ? 1 : 0), "after \(step.rawValue): \(names)")
        for name in bundles {
            let bundle = try BundleReader(trust: .keys([key.publicKey])).read(contentsOf: out.appendingPathComponent(name))
            #expect(bundle.contents.rawReplies == (try Sample.contents()).rawReplies)
        }
        // A later writer cleans what the dead one left, without touching the bundle.
        let writer = BundleWriter(directory: out, key: key)
        writer.removeStaleTemporaryFiles(olderThan: -1)
        let after = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
        #expect(after.sorted() == bundles.sorted())
    }

    @Test func writerNotKilledCompletes() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let source = dir.url.appendingPathComponent("source.tar.gz")
        try Data(try Sample.encoded()).write(to: source)
        let result = try CareAgentBinary.run(
            ["bundle", "rewrite", source.path, "--directory", dir.url.appendingPathComponent("out").path,
             "--state-dir", dir.url.appendingPathComponent("state").path])
        #expect(result.status == 0, "\(result.stderr)")
        let written = URL(fileURLWithPath: result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        _ = try BundleReader().read(contentsOf: written)
    }
}

@Suite struct CommandLineTests {
    @Test func verifyExitsZeroOnlyWhenEveryBundleIsGood() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let good = try BundleWriter(directory: dir.url, key: Sample.key).write(try Sample.contents())
        let bad = dir.url.appendingPathComponent("bad.tar.gz")
        try Data(try Sample.encoded().prefix(500)).write(to: bad)

        let ok = try CareAgentBinary.run(["bundle", "verify", good.path])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("OK: signature valid for embedded key \(Sample.key.publicKey.fingerprint)"))

        let mixed = try CareAgentBinary.run(["bundle", "verify", good.path, bad.path])
        #expect(mixed.status == 1)
        #expect(mixed.stdout.contains("bad.tar.gz: FAILED: truncated bundle"))

        let trusted = try CareAgentBinary.run(["bundle", "verify", good.path, "--pubkey", Sample.key.publicKey.base64])
        #expect(trusted.status == 0)
        #expect(trusted.stdout.contains("signed by trusted key"))

        let keys = dir.url.appendingPathComponent("keys")
        try FileManager.default.createDirectory(at: keys, withIntermediateDirectories: true)
        try "# lab agent\n\(Sample.otherKey.publicKey.base64)\n".write(to: keys.appendingPathComponent("lab.pub"), atomically: true, encoding: .utf8)
        let untrusted = try CareAgentBinary.run(["bundle", "verify", good.path, "--keys", keys.path])
        #expect(untrusted.status == 1)
        #expect(untrusted.stdout.contains("untrusted signer"))
    }

    @Test func keyShowPrintsBase64AndFingerprint() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let missing = try CareAgentBinary.run(["key", "show", "--state-dir", dir.path])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("no agent key"))
        let key = try AgentKey.loadOrCreate(stateDirectory: dir.url)
        let shown = try CareAgentBinary.run(["key", "show", "--state-dir", dir.path])
        #expect(shown.status == 0)
        #expect(shown.stdout == "public key:  \(key.publicKey.base64)\nfingerprint: \(key.publicKey.fingerprint)\n")
    }

    @Test func inspectShowsDeviceOutcomesAndFacts() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let file = try BundleWriter(directory: dir.url, key: Sample.key).write(try Sample.contents())
        let result = try CareAgentBinary.run(["bundle", "inspect", file.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("baku (192.0.2.10:830), model mx480, chassis serial JN1249018AFB"))
        #expect(result.stdout.contains("rpc-error"))
        #expect(result.stdout.contains("get-system-core-dumps: no reply within 60 s"))
        #expect(result.stdout.contains("2 of 8 RPCs failed"))
        let json = try CareAgentBinary.run(["bundle", "inspect", file.path, "--json"])
        let value = try JSONValue(json: Array(json.stdout.utf8))
        #expect(value["manifest"]?["device"]?["chassisSerial"] == .string("JN1249018AFB"))
        #expect(value["facts"] != nil)
    }

    @Test func diffAndReparseRunOnRealBundles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let writer = BundleWriter(directory: dir.url, key: Sample.key)
        let old = try writer.write(try Sample.contents())
        var changed = try Sample.contents(started: Sample.started.addingTimeInterval(3600))
        let config = changed.rawReplies.firstIndex { $0.rpc == "get-configuration" }!
        changed.rawReplies[config].bytes = Array(String(decoding: changed.rawReplies[config].bytes, as: UTF8.self)
            .replacingOccurrences(of: "<host-name>", with: "<host-name>new-").utf8)
        let new = try writer.write(changed)
        let diff = try CareAgentBinary.run(["bundle", "diff", old.path, new.path])
        #expect(diff.status == 0, "\(diff.stderr)")
        #expect(diff.stdout.contains("[edit system]"))
        #expect(diff.stdout.contains("+  host-name new-"))

        let reparse = try CareAgentBinary.run(["bundle", "reparse", old.path])
        #expect(reparse.status == 0)
        #expect(reparse.stdout.contains("identical to the stored facts"))
        let refused = try CareAgentBinary.run(["bundle", "reparse", old.path, "--write", dir.url.appendingPathComponent("n.tar.gz").path])
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("--write needs --state-dir"))
        let target = dir.url.appendingPathComponent("reparsed.tar.gz")
        // Re-signing vouches for the bundle: the signer must be a trusted key (TrustAndEscapingTests).
        let written = try CareAgentBinary.run(["bundle", "reparse", old.path, "--write", target.path, "--state-dir", dir.url.appendingPathComponent("state").path,
                                               "--pubkey", Sample.key.publicKey.base64])
        #expect(written.status == 0, "\(written.stderr)")
        let bundle = try BundleReader().read(contentsOf: target)
        #expect(bundle.manifest.derivedFrom?.originalSigner == Sample.key.publicKey.fingerprint)
        #expect(bundle.contents.rawReplies == (try Sample.contents()).rawReplies)
    }
}

/// The Swift runtime finds argv through /proc/self/maps and libdispatch reads /proc/self/task:
/// without /proc every command printed the top-level help and exited 0, or died of SIGILL within
/// a second (CI's chroot). The binary now refuses to start there, saying why.
@Suite struct RequiresProcTests {
    @Test func withoutProcTheBinaryRefusesToStartAndSaysWhy() throws {
        // The namespace really hides /proc: the same wrapper around a shell finds no maps file.
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        probe.arguments = CareAgentBinary.hidingProcArguments + ["/bin/sh", "-c", "test ! -e /proc/self/maps"]
        try probe.run()
        probe.waitUntilExit()
        #expect(probe.terminationStatus == 0)

        let version = try CareAgentBinary.run(["--version"])
        #expect(version.status == 0 && !version.stdout.isEmpty && !version.stdout.contains("USAGE"))
        // Several runs: the SIGILL came on some runs only.
        for _ in 0..<5 {
            let hidden = try CareAgentBinary.run(["--version"], hidingProc: true)
            #expect(hidden.status == 72, "stderr: \(hidden.stderr)")
            #expect(hidden.stdout.isEmpty)
            #expect(hidden.stderr.contains("care-agent: /proc is not mounted here"), "stderr: \(hidden.stderr)")
        }
    }
}

@Suite struct CommandLineHelpTests {
    @Test func bundleHelpListsTheSupportCommandsAndHidesTheTestOnes() throws {
        let help = try CareAgentBinary.run(["bundle", "--help"])
        #expect(help.status == 0)
        for command in ["verify", "inspect", "diff", "reparse"] {
            #expect(help.stdout.contains("  \(command) "), "\(command) missing from:\n\(help.stdout)")
        }
        #expect(!help.stdout.contains("rewrite"))
        #expect(!help.stdout.contains("benchmark"))
        let verify = try CareAgentBinary.run(["bundle", "verify", "--help"])
        #expect(verify.stdout.contains("--pubkey"))
        #expect(verify.stdout.contains("--keys"))
    }
}
