import Foundation
@testable import Simulator
import Testing
import TestSupport

/// The simulator against a third-party NETCONF client: Python ncclient (over paramiko) talks to
/// a real sshd whose netconf subsystem is `care-agent simulate netconf`.
@Suite(.serialized) struct NCClientInteropTests {
    static let probe = Fixtures.packageRoot.appendingPathComponent("scripts/ncclient-probe.py").path

    struct ProbeResult: Decodable {
        var session_id: String
        var server_capabilities: [String]
        var framing: String
        var software_host_names: [String]
        var software_versions: [String]
        var command_host_names: [String]
        var config_host_names: [String]
        var config_in_data: Bool
        var unknown_rpc_error: RPCErrorSeen?
        struct RPCErrorSeen: Decodable { var message: String; var tag: String }
    }

    /// Installs ncclient with pip when it is missing (it is on PyPI). Debian 12's own python3 is
    /// "externally managed" (PEP 668) and refuses a plain `pip install`, hence the second try.
    static func ensureNCClient() throws {
        if (try? runProgram("/usr/bin/env", ["python3", "-c", "import ncclient"])) != nil { return }
        do {
            try runProgram("/usr/bin/env", ["python3", "-m", "pip", "install", "--quiet", "ncclient"])
        } catch {
            try runProgram("/usr/bin/env", ["python3", "-m", "pip", "install", "--quiet", "--break-system-packages", "ncclient"])
        }
    }

    func probe(_ h: SSHDHarness, device: String) throws -> ProbeResult {
        let output = try runProgram("/usr/bin/env", ["python3", Self.probe, "--host", h.addresses[0], "--port", String(h.port),
                                                     "--user", h.user, "--key", h.clientKeys["ed25519"]!, "--device", device])
        return try JSONDecoder().decode(ProbeResult.self, from: Data(output.utf8))
    }

    func values(_ element: String, _ fixture: String) throws -> [String] {
        XMLTextRewriter.values(of: element, in: String(decoding: try Fixtures.bytes(fixture), as: UTF8.self))
    }

    @Test(arguments: ["junos", "default"])
    func ncclientReadsWhatTheCapturesHold(device: String) throws {
        try Self.ensureNCClient()
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile)"))
        defer { h.stop() }
        let result = try probe(h, device: device)

        #expect(result.server_capabilities.contains("urn:ietf:params:netconf:base:1.1"))
        #expect(result.framing == "chunked")
        #expect(!result.session_id.isEmpty)
        let software = TestProfiles.mx480["get-software-information"]!
        #expect(result.software_host_names == (try values("host-name", software)))
        #expect(result.software_versions == (try values("junos-version", software)))
        #expect(result.software_versions.count == 2)
        #expect(result.command_host_names == result.software_host_names)
        let configuration = TestProfiles.mx480["get-configuration"]!
        #expect(result.config_in_data)
        #expect(result.config_host_names == (try values("host-name", configuration)))
        #expect(!result.config_host_names.isEmpty)
        #expect(result.unknown_rpc_error?.message == "syntax error")
        #expect(result.unknown_rpc_error?.tag == "operation-failed")
    }

    @Test func ncclientFallsBackToEndOfMessageFramingWhenTheDeviceOffersOnlyBase10() throws {
        try Self.ensureNCClient()
        let dir = try TestProfiles.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let profile = try TestProfiles.write(TestProfiles.mx480, named: "mx480", under: dir)
        let h = try SSHDHarness(.init(subsystem: "\(try careAgentExecutable()) simulate netconf --profile \(profile) --base 1.0"))
        defer { h.stop() }
        let result = try probe(h, device: "junos")
        #expect(result.framing == "end-of-message")
        #expect(!result.server_capabilities.contains("urn:ietf:params:netconf:base:1.1"))
        #expect(result.software_host_names == (try values("host-name", TestProfiles.mx480["get-software-information"]!)))
    }
}
