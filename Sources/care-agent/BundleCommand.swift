import ArgumentParser
import Bundle
import Foundation
import Junos
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `care-agent bundle ...`: the support engineer's tools for health snapshot bundles.
struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Verify, inspect, compare and re-parse health snapshot bundles.",
        subcommands: [Verify.self, Inspect.self, Diff.self, Reparse.self, Rewrite.self, BundleServe.self, Benchmark.self]
    )

    static func fail(_ message: String) -> ExitCode {
        Console.error(message)
        return ExitCode.failure
    }

    /// Reads and verifies one bundle under `trust`, or exits with its one-line error. Without
    /// trusted keys, warns (stderr) that only the embedded key was checked.
    static func open(_ path: String, trust: BundleTrust, decodesFacts: Bool = true) throws -> VerifiedBundle {
        let bundle: VerifiedBundle
        do {
            bundle = try BundleReader(trust: trust, decodesFacts: decodesFacts).read(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw fail("\(path): \(error)")
        }
        TrustedKeys.warnIfUnchecked(path, bundle: bundle, trust: trust)
        return bundle
    }

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check bundles' hashes and signatures; exit 0 only if all are good.",
            discussion: """
            Without --pubkey or --keys the signature is checked against the key embedded in the \
            manifest (integrity only: anyone can sign with their own key) and its fingerprint is \
            printed. With them, the signer must also be one of the trusted keys (origin).
            """
        )

        @Argument(help: "Bundle files (.tar.gz).")
        var files: [String]

        @OptionGroup var trustedKeys: TrustedKeys

        func validate() throws {
            if files.isEmpty { throw ValidationError("give at least one bundle file") }
        }

        func run() throws {
            let trust = try trustedKeys.trust()
            var failures = 0
            for file in files {
                do {
                    // Streamed (nothing kept but the manifest, facts and log): a bundle unpacking to
                    // the limit costs pieces of it, not the limit twice over.
                    let bundle = try BundleReader(trust: trust, retainsContents: false).read(contentsOf: URL(fileURLWithPath: file))
                    let m = bundle.manifest
                    // What the intake refuses, verify does not pass.
                    if let problem = bundle.identityProblem {
                        failures += 1
                        Console.out(TerminalText.escaped("\(file): FAILED: inconsistent bundle: \(problem)"))
                        continue
                    }
                    let how: String
                    if case .embeddedKey = trust { how = "signature valid for embedded key \(bundle.signer.fingerprint) (not checked against trusted keys)" }
                    else { how = "signed by trusted key \(bundle.signer.fingerprint)" }
                    Console.out(TerminalText.escaped("\(file): OK: \(how); \(m.device.name) serial \(m.device.chassisSerial ?? "unknown"), collected \(ISO8601DateFormatter().string(from: m.collection.started)), \(m.members.count + 2) members"))
                    TrustedKeys.warnIfUnchecked(file, bundle: bundle, trust: trust)
                } catch {
                    failures += 1
                    Console.out(TerminalText.escaped("\(file): FAILED: \(error)"))
                }
            }
            if failures > 0 { throw ExitCode.failure }
        }
    }

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a bundle: device, outcomes of each RPC and every fact (after verifying it)."
        )

        @Argument(help: "A bundle file.")
        var file: String

        @Flag(help: "Print the manifest and facts as JSON.")
        var json = false

        @OptionGroup var trustedKeys: TrustedKeys

        func run() throws {
            let bundle = try BundleCommand.open(file, trust: try trustedKeys.trust())
            if let problem = bundle.identityProblem {
                Console.error("warning: \(file): inconsistent bundle (the intake refuses it): \(problem)")
            }
            print(json ? BundleInspection.json(bundle) : BundleInspection.text(bundle), terminator: "")
        }
    }

    struct Diff: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what changed on a device between two bundles (older first).",
            discussion: "Exit status 0 whether or not there are differences; 1 when a bundle does not verify."
        )

        @Argument(help: "The older bundle.")
        var old: String

        @Argument(help: "The newer bundle.")
        var new: String

        @Flag(help: "Print the differences as JSON.")
        var json = false

        @Flag(help: "Include fields that change on every capture (clock, uptime, short-term load).")
        var all = false

        @OptionGroup var trustedKeys: TrustedKeys

        func run() throws {
            let trust = try trustedKeys.trust()
            let comparison = BundleComparison(old: try BundleCommand.open(old, trust: trust), new: try BundleCommand.open(new, trust: trust),
                                              includeVolatile: all)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(comparison), as: UTF8.self))
            } else {
                print(comparison.text, terminator: "")
            }
        }
    }

    struct Reparse: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild a bundle's facts from its raw replies with this version's parsers and show what differs.",
            discussion: """
            --write NEW writes a new bundle holding the rebuilt facts, signed with the key in --state-dir \
            (required with --write; created there if missing). Its manifest records the original bundle id \
            and signer under derivedFrom (the agent's capture, however many re-parses ago), so nobody \
            mistakes it for an agent's own capture. Re-signing vouches for the bundle: --write needs the \
            signer among --pubkey/--keys, or --trust-embedded-key to re-sign a bundle checked only \
            against the key embedded in it.
            """
        )

        @Argument(help: "A bundle file.")
        var file: String

        @Option(help: "Write a new signed bundle with the rebuilt facts to this path (must not exist).")
        var write: String?

        @Option(name: .customLong("state-dir"), help: "State directory holding the signing key for --write.")
        var stateDirectory: String?

        @Flag(help: "Print the differences as JSON.")
        var json = false

        @OptionGroup var trustedKeys: TrustedKeys

        @Flag(name: .customLong("trust-embedded-key"),
              help: "With --write and no --pubkey/--keys: re-sign even though the signer was checked only against the key embedded in the bundle.")
        var trustEmbeddedKey = false

        func validate() throws {
            if write != nil && stateDirectory == nil {
                throw ValidationError("--write needs --state-dir DIR: the new bundle is signed with the key kept there")
            }
            if trustEmbeddedKey && (write == nil || !trustedKeys.publicKeys.isEmpty || trustedKeys.keysDirectory != nil) {
                throw ValidationError("--trust-embedded-key is for --write without --pubkey/--keys (it re-signs a bundle whose signer was not checked)")
            }
        }

        func run() throws {
            let trust = try trustedKeys.trust()
            let bundle = try BundleCommand.open(file, trust: trust)
            if write != nil, case .embeddedKey = trust, !trustEmbeddedKey {
                throw BundleCommand.fail("""
                    refusing to re-sign \(file): its signer \(bundle.signer.fingerprint) was checked only against the key \
                    embedded in the bundle; give the key that should have signed it (--pubkey KEY or --keys DIR), \
                    or --trust-embedded-key to re-sign it anyway
                    """)
            }
            let reparse = BundleReparse(bundle)
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                print(String(decoding: try encoder.encode(reparse.changes), as: UTF8.self))
            } else if reparse.changes.isEmpty {
                print("facts rebuilt from \(bundle.contents.rawReplies.count) replies: identical to the stored facts")
            } else {
                print("facts rebuilt from \(bundle.contents.rawReplies.count) replies: \(reparse.changes.count) differences (stored → rebuilt)")
                for change in reparse.changes { print("  \(TerminalText.escaped(change.description))") }
            }
            guard let write, let stateDirectory else { return }
            do {
                let key = try AgentKey.loadOrCreate(stateDirectory: URL(fileURLWithPath: stateDirectory))
                var reason = "facts re-parsed by care-agent bundle reparse"
                if case .embeddedKey = trust { reason += " (signer \(bundle.signer.fingerprint) not checked against trusted keys: --trust-embedded-key)" }
                let contents = reparse.contents(replacingFactsOf: bundle, reason: reason)
                let url = try BundleWriter(directory: URL(fileURLWithPath: write).deletingLastPathComponent(), key: key)
                    .write(contents, to: URL(fileURLWithPath: write))
                // With --json, stdout is the JSON alone: what was written goes to stderr.
                let wrote = "wrote \(url.path), signed by \(key.publicKey.fingerprint)"
                if json { FileHandle.standardError.write(Data((TerminalText.escaped(wrote) + "\n").utf8)) } else { print(wrote) }
            } catch {
                throw BundleCommand.fail("\(error)")
            }
        }
    }

    /// Hidden: rewrites a bundle's contents (new id) into a directory with the agent's writer, so
    /// tests can crash a real writer process at each step (CARE_AGENT_BUNDLE_CRASH_AT=<step>).
    struct Rewrite: ParsableCommand {
        static let configuration = CommandConfiguration(shouldDisplay: false)

        @Argument var source: String
        @Option var directory: String
        @Option(name: .customLong("state-dir")) var stateDirectory: String

        func run() throws {
            var contents = try BundleCommand.open(source, trust: .embeddedKey).contents
            contents.bundleId = UUID()
            do {
                let key = try AgentKey.loadOrCreate(stateDirectory: URL(fileURLWithPath: stateDirectory))
                print(try BundleWriter(directory: URL(fileURLWithPath: directory), key: key).write(contents).path)
            } catch {
                throw BundleCommand.fail("\(error)")
            }
        }
    }
}

/// `--pubkey`/`--keys`: the agent keys a bundle tool trusts. Every bundle command takes them, so
/// what a tool shows, compares, re-signs or serves is tied to a signer the user chose; without
/// them the signature is checked against the key embedded in the bundle only, and the tool says so.
struct TrustedKeys: ParsableArguments {
    @Option(name: .customLong("pubkey"), help: "A trusted agent public key (base64, from `care-agent key show`). Repeatable.")
    var publicKeys: [String] = []

    @Option(name: .customLong("keys"), help: "A directory of trusted key files, one base64 key per line.")
    var keysDirectory: String?

    func trust() throws -> BundleTrust {
        var trusted = Set<AgentPublicKey>()
        for text in publicKeys {
            do { trusted.insert(try AgentPublicKey(base64: text)) } catch { throw ValidationError("--pubkey: \(error)") }
        }
        if let keysDirectory {
            let names: [String]
            do { names = try FileManager.default.contentsOfDirectory(atPath: keysDirectory) } catch {
                throw ValidationError("--keys \(keysDirectory): cannot list the directory")
            }
            for name in names.sorted() where !name.hasPrefix(".") {
                let path = (keysDirectory as NSString).appendingPathComponent(name)
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { continue }
                for (number, line) in text.split(separator: "\n").enumerated() {
                    let trimmed = line.trimmingCharacters(in: .whitespaces)
                    if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                    do { trusted.insert(try AgentPublicKey(base64: trimmed)) } catch {
                        throw ValidationError("\(path) line \(number + 1): \(error)")
                    }
                }
            }
            if trusted.isEmpty { throw ValidationError("--keys \(keysDirectory): no keys found") }
        }
        return publicKeys.isEmpty && keysDirectory == nil ? .embeddedKey : .keys(trusted)
    }

    /// The warning every bundle tool prints (stderr, so --json output stays clean) when it
    /// checked the signature against the embedded key only.
    static func warnIfUnchecked(_ path: String, bundle: VerifiedBundle, trust: BundleTrust) {
        guard case .embeddedKey = trust else { return }
        FileHandle.standardError.write(Data((TerminalText.escaped(uncheckedWarning(path, signer: bundle.signer)) + "\n").utf8))
    }

    static func uncheckedWarning(_ path: String, signer: AgentPublicKey) -> String {
        "warning: \(path): signature checked only against the key embedded in the bundle (\(signer.fingerprint)): "
            + "this proves the bundle is intact, not who made it; give --pubkey KEY or --keys DIR to check the signer"
    }
}

extension BundleCommand {
    /// Hidden: bundles written and verified per second for a large device, compression ratio and
    /// peak memory (numbers in docs/performance.md, section "Bundles").
    struct Benchmark: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "benchmark", shouldDisplay: false)

        @Option(help: "The Tests/Fixtures directory.")
        var fixtures: String

        @Option(help: "Seconds to spend on each measurement.")
        var seconds: Double = 5

        @Option(help: "Repeat the interface and configuration contents this many times (a bigger chassis).")
        var scale: Int = 1

        @Option(help: "Where to write bundles (default: a new temporary directory, removed afterwards).")
        var directory: String?

        /// The largest capture of each RPC, preferring MX captures.
        func replies() throws -> [RawReply] {
            let root = URL(fileURLWithPath: fixtures)
            var out: [RawReply] = []
            for kind in FactKind.allCases {
                let dir = root.appendingPathComponent(kind.rpc)
                guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else { continue }
                let files = names.filter { $0.hasSuffix(".xml") }.map { dir.appendingPathComponent($0) }
                let sized = files.map { ($0, (try? Data(contentsOf: $0))?.count ?? 0) }
                let mx = sized.filter { $0.0.lastPathComponent.lowercased().contains("mx") }
                guard let pick = (mx.isEmpty ? sized : mx).max(by: { $0.1 < $1.1 }) else { continue }
                var bytes = Array(try Data(contentsOf: pick.0))
                if scale > 1, kind == .interfaces { bytes = repeated(bytes, from: "<physical-interface", to: "</physical-interface>") }
                if scale > 1, kind == .configuration { bytes = repeated(bytes, from: "<interfaces>", to: "</interfaces>") }
                out.append(RawReply(rpc: kind.rpc, bytes: bytes))
            }
            return out
        }

        /// The text from the first `start` to the end of the last `end`, repeated `scale` times.
        func repeated(_ bytes: [UInt8], from start: String, to end: String) -> [UInt8] {
            let text = String(decoding: bytes, as: UTF8.self)
            guard let first = text.range(of: start), let last = text.range(of: end, options: .backwards),
                  first.lowerBound < last.upperBound else { return bytes }
            let block = text[first.lowerBound ..< last.upperBound]
            let body = String(repeating: String(block), count: scale)
            return Array((text[..<first.lowerBound] + body + text[last.upperBound...]).utf8)
        }

        func run() throws {
            let raw = try replies()
            let key = AgentKey(privateKey: .init())
            let started = Date()
            // The device identity from the facts, as the collector writes it (the support side
            // refuses a manifest that disagrees with its facts).
            let facts = DeviceFacts.parsed(from: raw)
            let contents = BundleContents(
                agent: AgentIdentity(id: "benchmark", version: "dev"),
                device: DeviceIdentity(name: "mx-bench", address: "192.0.2.1", hostname: facts.software?.hostname,
                                       chassisSerial: facts.inventory?.chassisSerial, model: facts.software?.model),
                trigger: .onDemand, started: started, finished: started.addingTimeInterval(30),
                outcomes: raw.map { RPCOutcome(rpc: $0.rpc, status: .ok, durationSeconds: 1) },
                rawReplies: raw, facts: facts, log: "benchmark\n")
            let dir = directory.map { URL(fileURLWithPath: $0) }
                ?? FileManager.default.temporaryDirectory.appendingPathComponent("care-agent-bench-\(UUID().uuidString)")
            defer { if directory == nil { try? FileManager.default.removeItem(at: dir) } }
            let writer = BundleWriter(directory: dir, key: key)

            let sample = try BundleWriter.encode(contents, key: key)
            let rawTotal = raw.reduce(0) { $0 + $1.bytes.count }
            let unpacked = try BundleReader().read(bytes: sample).members.reduce(0) { $0 + $1.bytes.count }
            print("replies: \(raw.count), \(rawTotal) bytes of XML; bundle members \(unpacked) bytes")
            print("bundle file: \(sample.count) bytes, compression ratio \(String(format: "%.1f", Double(unpacked) / Double(sample.count))):1")

            // Baseline, same run: the least any store-and-forward writer does with these replies:
            // gzip them into one file, fsync, rename. No facts, manifest, hashes, signature or tar.
            let concatenated = raw.flatMap(\.bytes)
            var baselineCount = 0
            var clock = Date()
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            while Date().timeIntervalSince(clock) < seconds {
                let gz = try Gzip.compress(concatenated)
                let temp = dir.appendingPathComponent("baseline.tmp"), final = dir.appendingPathComponent("baseline-\(baselineCount).gz")
                let fd = Glibc.open(temp.path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o640)
                _ = gz.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                fsync(fd)
                Glibc.close(fd)
                rename(temp.path, final.path)
                baselineCount += 1
            }
            let baselineRate = Double(baselineCount) / Date().timeIntervalSince(clock)
            print(String(format: "baseline (gzip the raw replies + fsync + rename): %.1f files/s", baselineRate))

            var written: [URL] = []
            clock = Date()
            while Date().timeIntervalSince(clock) < seconds {
                var copy = contents
                copy.bundleId = UUID()
                // One device per second of collection start, as a fleet would be: no name collisions.
                copy.started = started.addingTimeInterval(Double(written.count))
                written.append(try writer.write(copy))
            }
            let writeRate = Double(written.count) / Date().timeIntervalSince(clock)
            print(String(format: "write (encode + sign + gzip + fsync + link): %.1f bundles/s (%d in %.1f s), %.2f x baseline", writeRate, written.count, seconds, writeRate / baselineRate))

            clock = Date()
            var verified = 0
            while Date().timeIntervalSince(clock) < seconds {
                _ = try BundleReader().read(contentsOf: written[verified % written.count])
                verified += 1
            }
            let verifyRate = Double(verified) / Date().timeIntervalSince(clock)
            print(String(format: "verify (read + gunzip + untar + signature + SHA-256 + decode): %.1f bundles/s, %.2f x baseline write rate", verifyRate, verifyRate / baselineRate))
            // What the support intake does: the same checks a piece at a time, keeping no replies.
            clock = Date()
            verified = 0
            let streaming = BundleReader(retainsContents: false)
            while Date().timeIntervalSince(clock) < seconds {
                _ = try streaming.read(contentsOf: written[verified % written.count])
                verified += 1
            }
            let streamingRate = Double(verified) / Date().timeIntervalSince(clock)
            print(String(format: "verify streaming (the intake's: same checks, no replies kept): %.1f bundles/s, %.2f x the whole read", streamingRate, streamingRate / verifyRate))

            var usage = rusage()
            #if canImport(Glibc)
            getrusage(RUSAGE_SELF.rawValue, &usage)
            #else
            getrusage(RUSAGE_SELF, &usage)
            #endif
            #if canImport(Darwin)
            let peak = Int(usage.ru_maxrss) / 1024
            #else
            let peak = Int(usage.ru_maxrss)
            #endif
            print("peak resident memory: \(peak / 1024) MiB")
        }
    }
}
