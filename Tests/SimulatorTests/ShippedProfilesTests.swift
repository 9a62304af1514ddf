import Foundation
@testable import Simulator
import Testing
import TestSupport

/// The device profiles shipped in `profiles/`: each is what the fleet and the demo serve.
@Suite struct ShippedProfilesTests {
    static let profilesDirectory = Fixtures.packageRoot.appendingPathComponent("profiles")

    struct Manifest: Decodable {
        var name: String
        var description: String
        /// RPC name → fixture path under Tests/Fixtures.
        var sources: [String: String]
        var notes: String
    }

    static func profileNames() throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: profilesDirectory.path).filter { !$0.hasPrefix(".") }.sorted()
    }

    @Test func theIssueAsksForTheseProfiles() throws {
        let names = try Self.profileNames()
        for wanted in ["mx480", "ex4300-vc", "srx-cluster", "qfx", "vmx", "vsrx", "ex4200"] {
            #expect(names.contains(wanted), "profiles/\(wanted) is missing")
        }
    }

    @Test(arguments: try profileNames())
    func everyReplyParsesAndSoftwareAndInventoryArePresent(name: String) throws {
        let profile = try DeviceProfile(directory: Self.profilesDirectory.appendingPathComponent(name))
        #expect(profile.malformedReplies().isEmpty, "\(profile.malformedReplies())")
        #expect(profile.replies["get-software-information"] != nil)
        #expect(profile.replies["get-chassis-inventory"] != nil)
        // Every profile answers health RPCs beyond those two.
        #expect(profile.replies.count >= 6, "\(name) has only \(profile.replies.keys.sorted())")
        // And has a host name and a chassis serial number for the fleet to replace.
        #expect(!profile.softwareHostNames().isEmpty, "\(name): no host-name in the software reply")
        #expect(profile.chassisSerialNumber != nil, "\(name): no chassis serial number in the inventory")
    }

    @Test(arguments: try profileNames())
    func everyFileIsAByteForByteCopyOfTheCaptureItsManifestNames(name: String) throws {
        let directory = Self.profilesDirectory.appendingPathComponent(name)
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: directory.appendingPathComponent("profile.json")))
        #expect(manifest.name == name)
        #expect(!manifest.description.isEmpty && !manifest.notes.isEmpty)
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".xml") }.sorted()
        #expect(files == manifest.sources.keys.map { "\($0).xml" }.sorted())
        let catalog = try String(contentsOf: Fixtures.url("CATALOG.tsv"), encoding: .utf8)
        for (rpc, fixture) in manifest.sources {
            #expect(try Data(contentsOf: directory.appendingPathComponent("\(rpc).xml")) == Data(contentsOf: Fixtures.url(fixture)),
                    "\(name)/\(rpc).xml differs from \(fixture)")
            #expect(catalog.contains("\n\(fixture)\t"), "\(fixture) is not in CATALOG.tsv")
            #expect(fixture.hasPrefix(rpc + "/"), "\(name): \(rpc).xml comes from another RPC's capture \(fixture)")
        }
    }
}
