import Foundation
import Junos
import Testing
import TestSupport

@Suite struct VirtualChassisTests {
    static let rpc = "get-virtual-chassis-information"

    static func fixture(_ name: String) throws -> VirtualChassisStatus {
        try VirtualChassisStatus.parse(bytes: Fixtures.bytes("\(rpc)/\(name)"), rpc: rpc)
    }

    @Test func mxVCWithSlotRanges() throws {
        let vc = try Self.fixture("pyez__mx240-vc-slot-range.xml")
        #expect(vc.id == "737a.74f6.9e99")
        #expect(vc.isPreprovisioned)
        #expect(vc.mode == nil)
        #expect(vc.members.map(\.id) == [0, 1])
        let m0 = vc.members[0], m1 = vc.members[1]
        #expect(m0.fpcSlotText == "(FPC   0- 11)")
        #expect(m0.firstFPCSlot == 0 && m0.lastFPCSlot == 11)
        #expect(m1.firstFPCSlot == 12 && m1.lastFPCSlot == 23)
        #expect(m0.role == .master && m0.isLocal)
        #expect(m1.role == .backup && !m1.isLocal)
        #expect(m0.neighbors.map(\.interface) == ["vcp-1/0/1", "vcp-1/0/2", "vcp-1/0/3"])
        #expect(m0.neighbors.allSatisfy { $0.memberID == 1 })
        #expect(vc.backup?.serialNumber == "JN122D0FEAFC")
    }

    @Test func masterIsNotAlwaysMemberZero() throws {
        let vc = try Self.fixture("jexp__ex-vc-23.4-no-serial.xml")
        #expect(vc.master?.id == 1)
        #expect(vc.master?.priority == 130)
        #expect(vc.members.allSatisfy { $0.serialNumber == nil && $0.model == nil })
        #expect(vc.members.map(\.routeMode) == ["VC", "VC"])
    }

    @Test func fabricAndMixedMode() throws {
        let fabric = try Self.fixture("pyez__qfx5100-mixed-fabric-style.xml")
        #expect(fabric.isFabric)
        #expect(fabric.mode == "Mixed")
        #expect(fabric.members.map(\.role) == [.master, .linecard])
        #expect(fabric.members.map(\.mixedMode) == ["Y", "Y"])
        #expect(fabric.nextMemberID == 2)
        let mixed = try Self.fixture("pyez__qfx5100-mixed-mode.xml")
        #expect(!mixed.isFabric)
        #expect(mixed.mode == "Mixed")
        #expect(mixed.members[1].model == "ex4300-24p")
    }

    @Test func absentMemberHasNoRole() throws {
        let vc = try Self.fixture("pyez__ex4300-vc-two-members.xml")
        let absent = vc.members[1]
        #expect(absent.status == "NotPrsnt")
        #expect(!absent.isPresent)
        #expect(absent.role == nil)
        #expect(absent.priority == nil)
        #expect(absent.neighbors.isEmpty)
        #expect(absent.serialNumber == "PD3714170265")
        #expect(vc.members[0].isPresent)
    }

    @Test func unknownRolesKeepTheirText() throws {
        let xml = """
        <rpc-reply><virtual-chassis-information><virtual-chassis-id-information junos:style="fabric" xmlns:junos="x">
        <virtual-chassis-id>a</virtual-chassis-id></virtual-chassis-id-information>
        <member-list><member><member-id>x</member-id><member-role>Spine*</member-role><fpc-slot/></member>
        <member><member-role>*</member-role></member></member-list>
        </virtual-chassis-information></rpc-reply>
        """
        let vc = try VirtualChassisStatus.parse(bytes: Array(xml.utf8), rpc: Self.rpc)
        #expect(vc.isFabric)
        #expect(vc.members[0].role == .other("Spine"))
        #expect(vc.members[0].isLocal)
        #expect(vc.members[0].id == nil)
        #expect(vc.members[0].firstFPCSlot == nil)
        #expect(vc.members[1].role == nil)
        #expect(vc.master == nil)
        let json = try JSONEncoder().encode(vc.members[0].role)
        #expect(String(decoding: json, as: UTF8.self) == "\"Spine\"")
        #expect(try JSONDecoder().decode(VirtualChassisRole.self, from: Data("\"Backup\"".utf8)) == .backup)
    }

    @Test func roundTripsThroughJSON() throws {
        for url in try Fixtures.files(in: Self.rpc) {
            let vc = try VirtualChassisStatus.parse(bytes: Array(Data(contentsOf: url)), rpc: Self.rpc)
            #expect(vc.master != nil, "\(url.lastPathComponent) names a master")
            let back = try JSONDecoder().decode(VirtualChassisStatus.self, from: JSONEncoder().encode(vc))
            #expect(back == vc, "\(url.lastPathComponent)")
        }
    }

    @Test func malformedMemberNumbersKeepTheirText() throws {
        let vc = try VirtualChassisStatus.parse(bytes: Array("""
        <virtual-chassis-information><member-list><member>
          <member-id>1</member-id><member-priority>1x28</member-priority><member-serial-number>AB</member-serial-number>
        </member></member-list></virtual-chassis-information>
        """.utf8), rpc: Self.rpc)
        let member = try #require(vc.members.first)
        #expect(member.id == 1 && member.priority == nil)
        #expect(member.unreadableValues == ["member-priority": "1x28"])
    }
}
