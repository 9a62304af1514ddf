import Foundation
import Junos
import Testing
import TestSupport

@Suite struct SoftwareTests {
    static let rpc = "get-software-information"

    static func fixture(_ name: String) throws -> SoftwareInformation {
        try SoftwareInformation.parse(bytes: Fixtures.bytes("\(rpc)/\(name)"), rpc: rpc)
    }

    static func parse(_ xml: String) throws -> SoftwareInformation {
        try SoftwareInformation.parse(bytes: Array(xml.utf8), rpc: rpc)
    }

    @Test func olderReleasesTakeTheVersionFromPackageComments() throws {
        let sw = try Self.fixture("pyez__m320-dual-re-14.1R1.xml")
        #expect(sw.routingEngines.map(\.name) == ["re0", "re1"])
        #expect(sw.routingEngines[0].versionSource == "junos-version")
        // re1 has no <junos-version>: the version is in "JUNOS Base OS boot [12.3R3.4]".
        #expect(sw.routingEngines[1].version == JunosVersion("12.3R3.4"))
        #expect(sw.routingEngines[1].versionSource == "package:junos")
        #expect(sw.hasVersionMismatch)
        #expect(sw.version == JunosVersion("14.1R1.10"))
        #expect(sw.packages.first?.version == "14.1R1.10")
    }

    @Test func dedicatedVersionPackagesWin() throws {
        let txp = try Self.fixture("pyez__txp-multichassis-abc-re0-lcc-re0.xml")
        #expect(txp.routingEngines.map(\.name) == ["abc-re0", "lcc0-re0", "lcc2-re0"])
        #expect(txp.routingEngines.allSatisfy { $0.versionSource == "package:junos-version" })
        #expect(txp.version?.train == "14.2")
        #expect(txp.routingEngines[1].model == "t100")

        let jdm = try Self.fixture("pyez__jdm-server0-server1.xml")
        #expect(jdm.routingEngines.map(\.name) == ["server0", "server1"])
        #expect(jdm.version == JunosVersion("17.4-20170718_dev_common.1-secure"))
        #expect(jdm.version?.type == .development)
        #expect(jdm.routingEngines[0].versionSource == "package:JUNOS version")
        // "Server slot : 0" is not a version.
        #expect(jdm.routingEngines[0].packages.first { $0.name == "Server slot" }?.version == nil)
        #expect(!jdm.hasVersionMismatch)
    }

    @Test func nodeSlicingKeepsEveryItem() throws {
        let sw = try Self.fixture("pyez__mx2020-node-slicing-bsys-gnf.xml")
        #expect(sw.routingEngines.count == 10)
        #expect(sw.routingEngines.first?.name == "bsys-re0")
        #expect(sw.routingEngines.last?.name == "gnf4-re1")
        #expect(sw.primaryName == "bsys-re0")
        #expect(sw.hostname == "bsys")
    }

    @Test func newerRepliesCarryOsNameAndPackageFileNames() throws {
        let sw = try Self.fixture("rjmcp__vsrx-24.4R1-nc-prefix.xml")
        #expect(sw.hostname == "vSRX-test10")
        #expect(sw.model == "vSRX")
        #expect(sw.routingEngines.first?.osName == "junos-es")
        #expect(sw.routingEngines.first?.name == nil)
        let hsm = try #require(sw.packages.first)
        #expect(hsm.name == "junos-hsm")
        #expect(hsm.packageName == "junos-hsm-x86-32-20241219.060016_builder_junos_244_r1")
        #expect(hsm.version == "20241219.060016_builder_junos_244_r1")
    }

    @Test func defaultNetconfNamespaceDoesNotHideData() throws {
        let sw = try Self.fixture("pyez__srx3600-12.3X48-netconf-default-ns.xml")
        #expect(sw.hostname == "lsys500")
        #expect(sw.version?.train == "12.3X48")
        #expect(sw.version?.dRelease == 40)
    }

    @Test func bannerNamesThePrimaryNode() throws {
        let xml = """
        <rpc-reply><multi-routing-engine-results>
          <multi-routing-engine-item><re-name>node0</re-name>
            <software-information><host-name>fw-a</host-name><product-model>srx345</product-model>
              <junos-version>21.4R3-S5.4</junos-version></software-information></multi-routing-engine-item>
          <multi-routing-engine-item><re-name>node1</re-name>
            <software-information><host-name>fw-b</host-name><product-model>srx345</product-model>
              <junos-version>21.4R3-S4</junos-version></software-information></multi-routing-engine-item>
        </multi-routing-engine-results><cli><banner>{primary:node1}</banner></cli></rpc-reply>
        """
        let sw = try Self.parse(xml)
        #expect(sw.primaryName == "node1")
        #expect(sw.hostname == "fw-b")
        #expect(sw.version == JunosVersion("21.4R3-S4"))
        #expect(sw.hasVersionMismatch)

        let noBanner = try Self.parse(xml.replacingOccurrences(of: "{primary:node1}", with: "{secondary:node1}"))
        #expect(noBanner.primaryName == "node0")
    }

    @Test func vcBannerNamesTheMasterMember() throws {
        let xml = """
        <rpc-reply><multi-routing-engine-results>
          <multi-routing-engine-item><re-name>fpc0</re-name><software-information><host-name>sw</host-name>
            <junos-version>18.4R1-S7.1</junos-version></software-information></multi-routing-engine-item>
          <multi-routing-engine-item><re-name>fpc1</re-name><software-information><host-name>sw</host-name>
            <junos-version>18.4R1-S7.1</junos-version></software-information></multi-routing-engine-item>
        </multi-routing-engine-results><cli><banner>{master:1}</banner></cli></rpc-reply>
        """
        #expect(try Self.parse(xml).primaryName == "fpc1")
    }

    @Test func packageCommentForms() throws {
        let xml = """
        <software-information><host-name>  r1
        </host-name>
          <package-information><name>jbase</name><comment>JUNOS Base OS Software Suite [12.3R6.6]</comment></package-information>
          <package-information><name>junos</name><comment>  JUNOS   Base OS boot
             [12.3R6.7] </comment></package-information>
          <package-information><name>jais</name><comment>AI-Scripts [6.0R2-THIN.0]</comment></package-information>
          <package-information><name>x</name><comment>no version here</comment></package-information>
          <package-information><comment>nameless</comment></package-information>
        </software-information>
        """
        let re = try #require(try Self.parse(xml).routingEngines.first)
        #expect(re.hostname == "r1")
        #expect(re.packages.map(\.version) == ["12.3R6.6", "12.3R6.7", "6.0R2-THIN.0", nil, nil])
        #expect(re.packages[1].comment == "JUNOS Base OS boot [12.3R6.7]")
        // The base OS boot package outranks the software suite listed before it.
        #expect(re.version == JunosVersion("12.3R6.7"))
        #expect(re.versionSource == "package:junos")
        #expect(re.packages[4].name == "")
    }

    @Test func missingAndMalformedFieldsGiveNil() throws {
        let sw = try Self.parse("<rpc-reply><software-information><junos-version> garbage </junos-version><product-model/></software-information></rpc-reply>")
        #expect(sw.hostname == nil)
        #expect(sw.model == nil)
        #expect(sw.version?.raw == "garbage")
        #expect(sw.version?.isParsed == false)
        let empty = try Self.parse("<software-information/>")
        #expect(empty.routingEngines.count == 1)
        #expect(empty.version == nil)
        #expect(empty.packages.isEmpty)
    }

    @Test func errorsAndEmptyRepliesThrow() {
        #expect(throws: JunosParseError.emptyReply(rpc: Self.rpc)) { try Self.parse("<rpc-reply/>") }
        #expect(throws: JunosParseError.self) { try Self.parse("<rpc-reply><software-information>") }
    }

    @Test func roundTripsThroughJSON() throws {
        for url in try Fixtures.files(in: Self.rpc) {
            let sw = try SoftwareInformation.parse(bytes: Array(Data(contentsOf: url)), rpc: Self.rpc)
            let back = try JSONDecoder().decode(SoftwareInformation.self, from: JSONEncoder().encode(sw))
            #expect(back == sw, "\(url.lastPathComponent)")
        }
    }

    // Shaped after PyEZ's NFX250 JDM capture: no <junos-version>, no `junos` package, the kernel
    // package first with a Linux version, the release only in `JUNOS Host ...` package comments.
    @Test func nfxTakesTheVersionFromJunosHostPackagesNotTheKernel() throws {
        let xml = """
        <rpc-reply><software-information><host-name>jdm</host-name><product-model>nfx250_s2_10_t</product-model>
          <package-information><name>JUNOS Host Software</name>
            <comment>JUNOS Host Software [3.14.61-rt58-WR7.0.0.13_ovp:3.0.2]</comment></package-information>
          <package-information><name>Junos Host Software package[1]</name>
            <comment>JUNOS Host nfx-2 base package [15.1X53-D45.3]</comment></package-information>
          <package-information><name>KERNEL</name><comment>KERNEL (null)</comment></package-information>
        </software-information></rpc-reply>
        """
        let re = try #require(try Self.parse(xml).routingEngines.first)
        #expect(re.version == JunosVersion("15.1X53-D45.3"))
        #expect(re.versionSource == "package:Junos Host Software package[1]")
    }

    @Test func mgdVersionInformationIsTheLastResort() throws {
        let xml = """
        <rpc-reply><software-information><host-name>jdm</host-name>
          <package-information><name>KERNEL</name><comment>KERNEL (null)</comment></package-information>
          <version-information><component></component><release></release></version-information>
          <version-information><component>MGD</component><release>15.1X53-D45.3.secure [dc-builder]</release></version-information>
        </software-information></rpc-reply>
        """
        let re = try #require(try Self.parse(xml).routingEngines.first)
        #expect(re.version == JunosVersion("15.1X53-D45.3"))
        #expect(re.versionSource == "version-information:MGD")
        // Without either, the version stays unknown rather than guessed from a script package.
        let none = try Self.parse("<software-information><package-information><name>jais</name><comment>AI-Scripts [6.0R2-THIN.0]</comment></package-information></software-information>")
        #expect(none.version == nil)
    }

    @Test func mxVirtualChassisBannerNamesMemberAndRE() throws {
        let xml = """
        <rpc-reply><multi-routing-engine-results>
          <multi-routing-engine-item><re-name>member0-re0</re-name><software-information><host-name>vc-m0</host-name>
            <junos-version>17.4R2.4</junos-version></software-information></multi-routing-engine-item>
          <multi-routing-engine-item><re-name>member1-re0</re-name><software-information><host-name>vc-m1</host-name>
            <junos-version>17.4R2.4</junos-version></software-information></multi-routing-engine-item>
        </multi-routing-engine-results><cli><banner>{master:member1-re0}</banner></cli></rpc-reply>
        """
        let sw = try Self.parse(xml)
        #expect(sw.primaryName == "member1-re0")
        #expect(sw.hostname == "vc-m1")
    }
}
