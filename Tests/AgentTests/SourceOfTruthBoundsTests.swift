@testable import Agent
import Bundle
import Foundation
import Junos
import Testing

/// The NetBox/Nautobot client's bounds and record checks, with pages handed in memory (the real
/// servers are in NetBoxSourceTests and NautobotSourceTests).
@Suite struct SourceOfTruthBoundsTests {
    static let tokenFile: String = {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("care-sot-token-\(getpid())").path
        try? "abc\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
        return path
    }()

    func client(_ configure: (inout SourceOfTruthSettings, inout InventorySource) -> Void = { _, _ in }, nautobot: Bool = false) -> SourceOfTruthClient {
        var settings = SourceOfTruthSettings(url: "https://sot.example.net")
        settings.tokenFile = Self.tokenFile
        var source = InventorySource(name: "sot", kind: .netbox(settings))
        configure(&settings, &source)
        source.kind = nautobot ? .nautobot(settings) : .netbox(settings)
        return SourceOfTruthClient(source: source)
    }

    func page(_ results: [Any], next: Any = NSNull(), count: Int? = nil) -> CurlGet.Response {
        var object: [String: Any] = ["results": results, "next": next, "previous": NSNull()]
        if let count { object["count"] = count }
        return .http(status: 200, body: Array(try! JSONSerialization.data(withJSONObject: object)))
    }

    func device(_ name: Any, ip4: String? = "192.0.2.1/32", fields: [String: Any] = [:], context: [String: Any]? = nil) -> [String: Any] {
        var d: [String: Any] = ["id": 7, "name": name, "platform": ["name": "Junos", "slug": "junos"],
                                "primary_ip4": ip4.map { ["address": $0] as Any } ?? NSNull(), "primary_ip6": NSNull(), "custom_fields": fields]
        if let context { d["config_context"] = context }
        return d
    }

    @Test func aServerThatNeverStopsPagingIsCutOff() {
        let c = client { s, _ in s.maximumPages = 3 }
        var calls = 0
        let result = c.read(environment: [:]) { _ in
            calls += 1
            return page([device("r\(calls)")], next: "https://sot.example.net/api/dcim/devices/?offset=\(calls)")
        }
        #expect(calls == 3)
        guard case let .failure(error) = result else { Issue.record("expected a failure"); return }
        #expect(error.message.contains("more than 3 pages (maximum-pages)"))
        // A next that repeats a page already read stops at once.
        let loop = c.read(environment: [:]) { _ in page([], next: "https://sot.example.net/api/dcim/devices/?limit=100&exclude=config_context") }
        guard case let .failure(repeated) = loop else { Issue.record("expected a failure"); return }
        #expect(repeated.message.contains("repeats"))
    }

    @Test func moreDevicesThanAllowedFailTheReadRatherThanCutIt() {
        let c = client { _, source in source.maximumDevices = 2 }
        guard case let .failure(byCount) = c.read(environment: [:], get: { _ in page([device("a")], count: 5000) }) else { Issue.record("expected a failure"); return }
        #expect(byCount.message.contains("5000 devices, more than maximum-devices = 2"))
        guard case let .failure(byList) = c.read(environment: [:], get: { _ in page([device("a"), device("b"), device("c")]) }) else { Issue.record("expected a failure"); return }
        #expect(byList.message.contains("maximum-devices = 2"))
    }

    @Test func malformedRecordsAreSkippedOneByOne() throws {
        let c = client { s, _ in s.configContext = true; s.portField = "care.port"; s.groupField = "care_group" }
        let yield = try c.read(environment: [:]) { _ in
            page([
                "not an object",
                device(NSNull()),
                device("no-address", ip4: nil),
                device("bad-address", ip4: "not-an-ip/24"),
                device("ok-context", context: ["care": ["port": 2830], "care_group": "core"]),
                device("ok-float-port", fields: ["care.port": 830.0]),
                device("bad-float-port", fields: ["care.port": 830.5]),
                device("bad-group", fields: ["care_group": 17]),
            ])
        }.get()
        #expect(yield.entries.map(\.device) == [Device(name: "ok-context", host: "192.0.2.1", port: 2830, group: "core", platform: "Junos"),
                                                Device(name: "ok-float-port", host: "192.0.2.1", port: 830, platform: "Junos")])
        #expect(yield.skipped.count == 6)
        #expect(yield.skipped[0].contains("not a JSON object"))
        #expect(yield.skipped[1].contains("device 7") && yield.skipped[1].contains("no name"))
        #expect(yield.skipped[2].contains("no-address") && yield.skipped[2].contains("no primary IPv4 or IPv6"))
        #expect(yield.skipped[3].contains("bad-address") && yield.skipped[3].contains("not an IP address"))
        #expect(yield.skipped[4].contains("bad-float-port"))
        #expect(yield.skipped[5].contains("bad-group") && yield.skipped[5].contains("care_group is not a group name"))
    }

    @Test func answersThatAreNotDeviceListsFailTheRead() {
        let c = client()
        for (answer, expected) in [
            (CurlGet.Response.http(status: 200, body: Array("[1,2]".utf8)), "not a JSON object"),
            (.http(status: 200, body: Array("{\"detail\":\"x\"}".utf8)), "no \"results\" list"),
            (.http(status: 500, body: Array("<h1>Server Error</h1>".utf8)), "answered HTTP 500"),
            (.http(status: 401, body: Array("{\"detail\":\"Authentication credentials were not provided.\"}".utf8)), "refused the API token (HTTP 401: Authentication credentials were not provided.)"),
            (.failed("Couldn't resolve host name"), "cannot reach NetBox"),
            (.tooLarge(limit: 10), "larger than 10 bytes"),
        ] {
            guard case let .failure(error) = c.read(environment: [:], get: { _ in answer }) else { Issue.record("expected a failure for \(expected)"); continue }
            #expect(error.message.contains(expected), "\(error.message)")
        }
        // No token: said before any request.
        var settings = SourceOfTruthSettings(url: "https://sot.example.net")
        settings.tokenCredential = "netbox-token"
        let noDirectory = SourceOfTruthClient(source: InventorySource(name: "sot", kind: .netbox(settings)))
        guard case let .failure(error) = noDirectory.read(environment: [:], get: { _ in Issue.record("no request expected"); return .failed("") }) else { return }
        #expect(error.message.contains("needs $CREDENTIALS_DIRECTORY"))
        // Under systemd, a credential the unit does not load: the message says how to load it.
        let empty = FileManager.default.temporaryDirectory.appendingPathComponent("care-sot-creds-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: empty) }
        guard case let .failure(notLoaded) = noDirectory.read(environment: ["CREDENTIALS_DIRECTORY": empty],
                                                              get: { _ in Issue.record("no request expected"); return .failed("") }) else { return }
        #expect(notLoaded.message.contains("LoadCredential=netbox-token") && notLoaded.message.contains("/etc/credstore/netbox-token"), "\(notLoaded.message)")
    }

    @Test func aTokenFileOthersCanReadIsRefusedBeforeAnyRequest() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("care-sot-open-token-\(getpid())").path
        try "abc\n".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        defer { unlink(path) }
        let c = client { s, _ in s.tokenFile = path }
        guard case let .failure(error) = c.read(environment: [:], get: { _ in Issue.record("no request expected"); return .failed("") }) else {
            Issue.record("expected a refusal"); return
        }
        #expect(error.description == "inventory sot: refusing the API token file \(path): its mode 0644 lets other users read or change it; run: chmod 600 \(path)")
    }

    @Test func crlfFilesSplitIntoLines() throws {
        let ini = try AnsibleInventory(path: "h.ini", text: "[junos]\r\nr1 ansible_host=192.0.2.1\r\nr2\r\n[junos:vars]\r\nansible_network_os=junos\r\n")
        #expect(ini.yield(source: "a", settings: AnsibleSettings(path: "h.ini"), defaultGroup: "default").entries.map(\.device.host) == ["192.0.2.1", "r2"])
        let db = RouterDB(path: "r.db", text: "r1:junos\r\nr2:junos\r\n").yield(source: "o", settings: RouterDBSettings(path: "r.db"), defaultGroup: "default")
        #expect(db.entries.map(\.device.name) == ["r1", "r2"])
    }
}

/// The platform a source of truth gives a device travels in the bundle's manifest, for reports.
@Suite struct PlatformInBundleTests {
    @Test func platformIsInTheManifestOnlyWhenKnown() {
        let start = Date(timeIntervalSince1970: 1_780_000_000)
        func contents(_ platform: String?) -> DeviceIdentity {
            let result = DeviceResult(device: Device(name: "r1", host: "192.0.2.1", platform: platform), host: "192.0.2.1", port: 830, trigger: .schedule,
                                      started: start, finished: start.addingTimeInterval(5), status: .ok,
                                      failureKind: nil, reason: nil, attempts: 1, rpcs: [], facts: DeviceFacts(), log: "")
            return BundleSink.contents(DeviceCollection(result: result, replies: []), agent: AgentIdentity(id: "a", version: "0.1.0")).device
        }
        #expect(contents("Junos").platform == "Junos")
        #expect(contents(nil).platform == nil)
    }
}
