import Testing
@testable import XML

@Suite struct XMLNamePathsTests {
    static let xml = """
    <configuration xmlns:junos="http://xml.juniper.net/junos/*/junos">
      <system><host-name>
          edge-1 </host-name><services><ssh/><telnet junos:inactive="inactive"/></services></system>
      <interfaces>
        <interface><name>ge-0/0/0</name><unit><name>0</name><family><inet6/></family></unit></interface>
        <interface><name>ge-0/0/1</name><unit><name>0</name><family><inet/></family></unit></interface>
        <interface inactive="inactive"><name>ge-0/0/2</name><unit><name>0</name><family><mpls/></family></unit></interface>
      </interfaces>
      <undocumented><routing-options><router-id>10.0.0.1</router-id></routing-options></undocumented>
      <routing-instances>
        <instance><name>a</name><instance-type>vrf</instance-type></instance>
        <instance><name>b</name><instance-type>virtual-router</instance-type></instance>
      </routing-instances>
    </configuration>
    """

    /// Every distinct path as `a/b/c`, depth first in the order first seen.
    static func listing(_ paths: XMLNamePaths) -> [String] {
        var result: [String] = []
        func walk(_ node: XMLNamePaths.Node, _ prefix: String) {
            var cursor = paths.firstChild(of: node)
            while let current = cursor {
                let path = prefix.isEmpty ? paths.name(of: current) : prefix + "/" + paths.name(of: current)
                result.append(path)
                walk(current, path)
                cursor = paths.nextSibling(of: current)
            }
        }
        walk(paths.root, "")
        return result
    }

    static func paths(internNames: Bool) throws -> XMLNamePaths {
        var options = XMLParseOptions()
        options.internNames = internNames
        let document = try XMLDocument(string: xml, options: options)
        var paths = XMLNamePaths(document: document, leavingOut: ("inactive", "inactive"), transparent: "undocumented",
                                 recording: ["host-name", "instance-type"])
        document.root.forEachChild { paths.add($0) }
        return paths
    }

    @Test(arguments: [true, false]) func distinctPathsLeftOutAndUnwrapped(internNames: Bool) throws {
        let paths = try Self.paths(internNames: internNames)
        #expect(Self.listing(paths) == [
            "system", "system/host-name", "system/services", "system/services/ssh",
            "interfaces", "interfaces/interface", "interfaces/interface/name", "interfaces/interface/unit",
            "interfaces/interface/unit/name", "interfaces/interface/unit/family",
            "interfaces/interface/unit/family/inet6", "interfaces/interface/unit/family/inet",
            "routing-options", "routing-options/router-id",
            "routing-instances", "routing-instances/instance", "routing-instances/instance/name",
            "routing-instances/instance/instance-type",
        ])
        #expect(paths.count == 18)
    }

    @Test(arguments: [true, false]) func lookupsValuesAndNames(internNames: Bool) throws {
        let paths = try Self.paths(internNames: internNames)
        let system = try #require(paths.child(of: paths.root, named: "system"))
        let hostName = try #require(paths.child(of: system, named: "host-name"))
        #expect(paths.elements(at: hostName).map(\.value) == ["edge-1"])
        #expect(paths.depth(of: hostName) == 2)
        #expect(paths.child(of: system, named: "host") == nil)
        let instances = try #require(paths.child(of: paths.root, named: "routing-instances"))
        let instance = try #require(paths.child(of: instances, named: "instance"))
        let instanceType = try #require(paths.child(of: instance, named: "instance-type"))
        #expect(paths.elements(at: instanceType).map(\.value) == ["vrf", "virtual-router"])
        // Not a recorded name: no elements kept.
        let name = try #require(paths.child(of: instance, named: "name"))
        #expect(paths.elements(at: name).isEmpty)
        #expect(paths.names(of: name) == ["routing-instances", "instance", "name"])
        #expect(paths.parent(of: name) == instance)
        #expect(paths.parent(of: paths.root) == nil)
        #expect(paths.nodes(named: "name").count == 3)
        #expect(paths.nodes(named: "mpls").isEmpty) // only under an inactive interface
        #expect(paths.nodes(named: "telnet").isEmpty) // inactive, prefixed attribute
        #expect(paths.nodes(named: "undocumented").isEmpty) // transparent
        #expect(paths.nodes(named: "no-such-name").isEmpty)
    }

    @Test func elementsAddedAtAChosenNodeMergeWithWhatIsThere() throws {
        let document = try XMLDocument(string: "<r><a><b/></a><g><a><c/></a></g></r>")
        var paths = XMLNamePaths(document: document)
        let a = try #require(document.root.child("a"))
        let g = try #require(document.root.child("g"))
        paths.add(a)
        // A group's contents added at the top land on the same paths.
        g.forEachChild { paths.add($0) }
        #expect(Self.listing(paths) == ["a", "a/b", "a/c"])
        let node = try #require(paths.child(of: paths.root, named: "a"))
        paths.add(g, under: node)
        #expect(Self.listing(paths) == ["a", "a/b", "a/c", "a/g", "a/g/a", "a/g/a/c"])
    }

    @Test func documentOrder() throws {
        let document = try XMLDocument(string: "<r><a><b/><c><d/></c></a><e/></r>")
        let root = document.root
        let a = try #require(root.child("a")), b = try #require(a.child("b")), c = try #require(a.child("c"))
        let d = try #require(c.child("d")), e = try #require(root.child("e"))
        let ordered = [root, a, b, c, d, e]
        for (i, x) in ordered.enumerated() {
            for (j, y) in ordered.enumerated() {
                #expect(x.precedes(y) == (i < j), "\(x.name) before \(y.name)")
            }
        }
        let other = try XMLDocument(string: "<r><a/></r>")
        #expect(!root.precedes(other.root) && !other.root.precedes(root))
    }
}
