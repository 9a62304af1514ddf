import Bundle
import Foundation
@testable import Simulator
import Testing
import TestSupport

/// Replaying a device from a health bundle's raw replies (`raw/<rpc>.xml`).
@Suite(.serialized) struct BundleReplayTests {

    /// An extracted bundle: raw/ from the MX480 captures, plus the members a bundle also has.
    func extractedBundle(under dir: URL) throws -> URL {
        let bundle = dir.appendingPathComponent("mx480-JN11F00AAFRB-20261125T031500Z")
        _ = try TestProfiles.write(TestProfiles.mx480, named: "raw", under: bundle)
        try Data("{}".utf8).write(to: bundle.appendingPathComponent("facts.json"))
        return bundle
    }

    @Test func bundleMembersBecomeRepliesAndOtherMembersAreIgnored() throws {
        let software = try Fixtures.bytes(TestProfiles.mx480["get-software-information"]!)
        let profile = try DeviceProfile(name: "b", bundleMembers: [
            ("manifest.json", Array("{}".utf8)), ("raw/get-software-information.xml", software),
            ("raw/nested/x.xml", [0x3C]), ("collection.log", []),
        ])
        #expect(profile.replies.keys.sorted() == ["get-software-information"])
        #expect(profile.replies["get-software-information"] == software)
        #expect(throws: SimulatorError.self) { _ = try DeviceProfile(name: "empty", bundleMembers: [("facts.json", [])]) }
    }

    @Test func extractedBundleDirectoryLoadsItsRawReplies() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bundle = try extractedBundle(under: dir)
        let profile = try DeviceProfile(bundleDirectory: bundle)
        #expect(profile.name == bundle.lastPathComponent)
        #expect(Set(profile.replies.keys) == Set(TestProfiles.mx480.keys))
        #expect(profile.replies["get-chassis-inventory"] == (try Fixtures.bytes(TestProfiles.mx480["get-chassis-inventory"]!)))
        do {
            _ = try DeviceProfile(bundleDirectory: dir.appendingPathComponent("nothing"))
            Issue.record("a directory without raw/ was accepted")
        } catch {
            #expect("\(error)".contains("no raw/ directory: not an extracted bundle"))
        }
        // A reply that is a link to a file outside the bundle is refused, not served.
        let outside = dir.appendingPathComponent("outside-secret.xml").path
        try "<secret>outside the bundle</secret>".write(toFile: outside, atomically: true, encoding: .utf8)
        let link = bundle.appendingPathComponent("raw/get-software-information.xml").path
        try FileManager.default.removeItem(atPath: link)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: outside)
        do {
            let served = try DeviceProfile(bundleDirectory: bundle)
            Issue.record("a symbolic link was served: \(String(decoding: served.replies["get-software-information"] ?? [], as: UTF8.self))")
        } catch {
            #expect("\(error)".contains("get-software-information.xml") && "\(error)".contains("not a regular file"), "\(error)")
        }
    }

    @Test func simulateDeviceServesTheBundleWithItsCapturedIdentity() throws {
        let executable = try careAgentExecutable()
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bundle = try extractedBundle(under: dir)
        let state = dir.appendingPathComponent("state").path, log = dir.appendingPathComponent("device.out").path
        let server = try ChildProcess(executable, ["simulate", "device", "--bundle-dir", bundle.path, "--state", state], stdout: log, stderr: log)
        defer { if server.isRunning { server.signal(SIGKILL); server.wait() } }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline && server.isRunning && !readText(log).contains("Stop with Ctrl-C") { usleep(50_000) }
        let banner = readText(log)
        try #require(banner.contains("Stop with Ctrl-C"), "\(banner)")
        let port = try #require(banner.split(separator: "\n").first { $0.contains("port:") }?.split(separator: " ").last.map(String.init))
        #expect(banner.contains("host:        127.0.0.1"))
        // A given --state is made private too: the served replies 0600, their directories 0700.
        var info = stat()
        #expect(stat(state, &info) == 0 && info.st_mode & 0o777 == 0o700)
        let served = (try? FileManager.default.subpathsOfDirectory(atPath: state + "/profiles")) ?? []
        let replyFiles = served.filter { $0.hasSuffix(".xml") }
        #expect(!replyFiles.isEmpty)
        for file in replyFiles { #expect(stat(state + "/profiles/" + file, &info) == 0 && info.st_mode & 0o777 == 0o600, "\(file)") }

        let out = try runProgram(executable, ["rpc", "--host", "127.0.0.1", "--port", port, "--user", currentUser(),
                                              "--key", state + "/client_ed25519", "--known-hosts", state + "/known_hosts",
                                              "--timeout", "10", "get-software-information", "get-chassis-inventory"])
        let captured = String(decoding: try Fixtures.bytes(TestProfiles.mx480["get-software-information"]!), as: UTF8.self)
        #expect(XMLTextRewriter.values(of: "host-name", in: out).prefix(2) == XMLTextRewriter.values(of: "host-name", in: captured).prefix(2))
        let inventory = String(decoding: try Fixtures.bytes(TestProfiles.mx480["get-chassis-inventory"]!), as: UTF8.self)
        #expect(XMLTextRewriter.values(of: "serial-number", in: out).first == XMLTextRewriter.values(of: "serial-number", in: inventory).first)

        server.signal(SIGTERM)
        let stopBy = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < stopBy && server.isRunning { usleep(50_000) }
        #expect(!server.isRunning)
        #expect(server.wait() == 0)
        #expect(!SimulatedFleet.canConnect("127.0.0.1", Int(port)!))
    }

    /// An extracted bundle with its manifest: the replies served are checked against it first,
    /// so a reply edited after extraction (or one added) is refused, naming it.
    @Test func simulateDeviceChecksAnExtractedBundleAgainstItsManifest() throws {
        let executable = try careAgentExecutable()
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let extracted = dir.appendingPathComponent("baku")
        try FileManager.default.createDirectory(at: extracted, withIntermediateDirectories: true)
        try runProgram("/bin/tar", ["-xzf", Fixtures.url("bundles/baku-JN1249018AFB-20251125-020000.tar.gz").path, "-C", extracted.path])
        /// Runs `simulate device` until it serves (stopped then) or exits; returns its exit status (nil: served) and output.
        func simulate(_ extra: [String] = []) throws -> (status: Int32?, output: String) {
            let log = dir.appendingPathComponent("simulate-\(UUID().uuidString.prefix(6))").path
            let server = try ChildProcess(executable, ["simulate", "device", "--bundle-dir", extracted.path, "--state", dir.appendingPathComponent("state").path] + extra,
                                          stdout: log + ".out", stderr: log + ".err")
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline && server.isRunning && !readText(log + ".out").contains("Stop with Ctrl-C") { usleep(50_000) }
            if server.isRunning {
                server.signal(SIGTERM)
                server.wait()
                return (nil, readText(log + ".err") + readText(log + ".out"))
            }
            return (server.wait(), readText(log + ".err") + readText(log + ".out"))
        }
        let served = try simulate()
        #expect(served.status == nil && served.output.contains("signature checked only against the key embedded"), "\(served.output)")

        let inventory = extracted.appendingPathComponent("raw/get-chassis-inventory.xml")
        let original = try Data(contentsOf: inventory)
        try Data(String(decoding: original, as: UTF8.self).replacingOccurrences(of: "JN1249018AFB", with: "JN0000000000").utf8).write(to: inventory)
        let edited = try simulate()
        #expect(edited.status == 1 && edited.output.contains("SHA-256 of raw/get-chassis-inventory.xml does not match the manifest"), "\(edited.output)")
        try original.write(to: inventory)

        try Data("<x/>".utf8).write(to: extracted.appendingPathComponent("raw/get-extra.xml"))
        let added = try simulate()
        #expect(added.status == 1 && added.output.contains("member raw/get-extra.xml is not listed in the signed manifest"), "\(added.output)")
        try FileManager.default.removeItem(at: extracted.appendingPathComponent("raw/get-extra.xml"))

        let stranger = try AgentKey(rawRepresentation: [UInt8](repeating: 3, count: 32)).publicKey.base64
        let untrusted = try simulate(["--pubkey", stranger])
        #expect(untrusted.status == 1 && untrusted.output.contains("untrusted signer"), "\(untrusted.output)")
    }

    @Test func bundleServeReplaysTheSampleBundleIncludingItsErrorReply() throws {
        let executable = try careAgentExecutable()
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bundle = Fixtures.url("bundles/baku-JN1249018AFB-20251125-020000.tar.gz").path
        let profile = try DeviceProfile(bundleFile: URL(fileURLWithPath: bundle))
        #expect(profile.name == "baku")
        #expect(profile.replies.keys.sorted() == ["get-alarm-information", "get-chassis-cluster-status", "get-chassis-inventory",
                                                  "get-configuration", "get-environment-information", "get-route-engine-information",
                                                  "get-software-information"])

        let state = dir.appendingPathComponent("state").path, log = dir.appendingPathComponent("serve.out").path
        let warnings = dir.appendingPathComponent("serve.err").path
        let server = try ChildProcess(executable, ["bundle", "serve", bundle, "--state", state], stdout: log, stderr: warnings)
        defer { if server.isRunning { server.signal(SIGKILL); server.wait() } }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline && server.isRunning && !readText(log).contains("Stop with Ctrl-C") { usleep(50_000) }
        let banner = readText(log)
        try #require(banner.contains("Stop with Ctrl-C"), "\(banner)")
        #expect(banner.contains("Serving baku (7 replies"))
        // Served without --pubkey/--keys: the log says the signer was not checked.
        #expect(readText(warnings).contains("signature checked only against the key embedded in the bundle"), "\(readText(warnings))")
        let port = try #require(banner.split(separator: "\n").first { $0.contains("port:") }?.split(separator: " ").last.map(String.init))
        let arguments = ["rpc", "--host", "127.0.0.1", "--port", port, "--user", currentUser(), "--key", state + "/client_ed25519",
                         "--known-hosts", state + "/known_hosts", "--timeout", "10"]
        let out = try runProgram(executable, arguments + ["get-software-information", "get-chassis-inventory"])
        #expect(XMLTextRewriter.values(of: "host-name", in: out).first == "baku")
        #expect(XMLTextRewriter.values(of: "serial-number", in: out).first == "JN1249018AFB")
        // The device's error reply (an xnm:error) is stored in the bundle and replayed as is.
        let cluster = try runProgram(executable, arguments + ["get-chassis-cluster-status"])
        #expect(cluster.contains("<message>error: Chassis cluster is not enabled</message>"), "\(cluster)")
        // An RPC that timed out has no reply in the bundle: the device answers as Junos does to an unknown RPC.
        let errors = dir.appendingPathComponent("rpc.err").path
        let failing = try ChildProcess(executable, arguments + ["get-system-core-dumps"], stderr: errors)
        #expect(failing.wait() == 1)
        #expect(readText(errors) == "care-agent: 127.0.0.1:\(port): get-system-core-dumps: syntax error (bad element: get-system-core-dumps) [protocol operation-failed]\n")

        server.signal(SIGTERM)
        let stopBy = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < stopBy && server.isRunning { usleep(50_000) }
        #expect(server.wait() == 0)
        #expect(!FileManager.default.fileExists(atPath: state + "/ready"))
    }

    @Test func aBundleThatDoesNotVerifyIsRefused() throws {
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var bytes = try Fixtures.bytes("bundles/baku-JN1249018AFB-20251125-020000.tar.gz")
        bytes[bytes.count / 2] ^= 0xFF
        let damaged = dir.appendingPathComponent("damaged.tar.gz")
        try Data(bytes).write(to: damaged)
        #expect(throws: SimulatorError.self) { _ = try DeviceProfile(bundleFile: damaged) }
    }

    /// Issue 10: the default state directory is made by mkdtemp (not a predictable /tmp path),
    /// kept private (replies 0600, directories 0700) and removed at exit; --pubkey is honoured.
    @Test func bundleServeKeepsItsStatePrivate() throws {
        let executable = try careAgentExecutable()
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let bundle = Fixtures.url("bundles/baku-JN1249018AFB-20251125-020000.tar.gz").path
        let log = dir.appendingPathComponent("serve.out").path
        // A key that did not sign it: refused before anything is served.
        let other = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
        let refused = try ChildProcess(executable, ["bundle", "serve", bundle, "--pubkey", other], stderr: log)
        #expect(refused.wait() == 1)
        #expect(readText(log).contains("untrusted signer: bundle is signed by"), "\(readText(log))")

        // What the previous version used: a fixed name another user could create first.
        let server = try ChildProcess(executable, ["bundle", "serve", bundle], stdout: log, stderr: dir.appendingPathComponent("serve.err").path,
                                      environment: ProcessInfo.processInfo.environment.merging(["TMPDIR": dir.path]) { $1 })
        defer { if server.isRunning { server.signal(SIGKILL); server.wait() } }
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline && server.isRunning && !readText(log).contains("Stop with Ctrl-C") { usleep(50_000) }
        let banner = readText(log)
        try #require(banner.contains("Stop with Ctrl-C"), "\(banner)")
        let key = try #require(banner.split(separator: "\n").first { $0.contains("key:") }?.split(separator: " ").last.map(String.init))
        let state = (key as NSString).deletingLastPathComponent
        let root = (state as NSString).deletingLastPathComponent
        #expect((root as NSString).deletingLastPathComponent == dir.path)
        let name = (root as NSString).lastPathComponent
        #expect(name.hasPrefix("care-agent-device-") && name != "care-agent-device-\(server.pid)", "\(name)")
        func mode(_ path: String) -> mode_t { var info = stat(); return lstat(path, &info) == 0 ? info.st_mode & 0o7777 : 0o7777 }
        #expect(mode(root) == 0o700)
        // Every directory 0700 and every file 0600 below it: replies, keys, sshd files.
        var replies = 0
        let walker = FileManager.default.enumerator(atPath: state)
        while let relative = walker?.nextObject() as? String {
            let path = state + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            if info.st_mode & S_IFMT == S_IFDIR { #expect(mode(path) == 0o700, "\(relative)") }
            if info.st_mode & S_IFMT == S_IFREG { #expect(mode(path) == 0o600, "\(relative)") }
            if relative.hasSuffix("get-software-information.xml") { replies += 1 }
        }
        #expect(replies == 1)
        // Still served: the private modes do not get in the way of the device's own user.
        let port = try #require(banner.split(separator: "\n").first { $0.contains("port:") }?.split(separator: " ").last.map(String.init))
        let out = try runProgram(executable, ["rpc", "--host", "127.0.0.1", "--port", port, "--user", currentUser(), "--key", key,
                                              "--known-hosts", state + "/known_hosts", "--timeout", "10", "get-software-information"])
        #expect(XMLTextRewriter.values(of: "host-name", in: out).first == "baku")
        server.signal(SIGTERM)
        #expect(server.wait() == 0)
        #expect(!FileManager.default.fileExists(atPath: root))
    }

    func currentUser() -> String {
        getpwuid(getuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? "root"
    }
}
