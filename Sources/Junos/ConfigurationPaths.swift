import XML

/// The distinct keyword paths of a configuration, identifiers dropped, as a trie, with the values
/// of the few leaves features depend on (``configurationValueKeywords``). A configuration with
/// 100,000 interfaces has only a few hundred distinct paths, so each "is anything configured at
/// `interfaces/*/unit/family/inet6`" of ``FeatureProfile`` is answered without walking the
/// configuration again.
///
/// Two sources: ``StatementPaths`` (text configurations, and groups applied below the top) and
/// `XMLNamePaths` read straight from the XML.
protocol ConfigurationPaths {
    associatedtype Node
    var root: Node { get }
    func child(of node: Node, named keyword: String) -> Node?
    func firstChild(of node: Node) -> Node?
    func nextSibling(of node: Node) -> Node?
    /// Values (a leaf's value, else a list key) recorded at `node`, for the keywords of
    /// ``configurationValueKeywords`` only.
    func values(at node: Node) -> [String]
    /// Whether a statement at any depth has this keyword.
    func containsKeyword(_ keyword: String) -> Bool
}

/// Keywords whose values the paths keep: what ``FeatureProfile`` and ``ConfigurationFacts`` read.
let configurationValueKeywords = ["instance-type", "encapsulation", "host-name", "domain-name"]

extension ConfigurationPaths {
    /// Whether `path` (`*` for any one keyword) leads anywhere from `node`. Allocates nothing.
    func reaches(_ path: ArraySlice<String>, from node: Node) -> Bool {
        guard let first = path.first else { return true }
        if first == "*" {
            var cursor = firstChild(of: node)
            while let current = cursor {
                if reaches(path.dropFirst(), from: current) { return true }
                cursor = nextSibling(of: current)
            }
            return false
        }
        guard let next = child(of: node, named: first) else { return false }
        return reaches(path.dropFirst(), from: next)
    }

    /// The nodes `path` leads to from `node`.
    func nodes(at path: ArraySlice<String>, from node: Node) -> [Node] {
        guard let first = path.first else { return [node] }
        if first == "*" {
            var found: [Node] = []
            var cursor = firstChild(of: node)
            while let current = cursor {
                found += nodes(at: path.dropFirst(), from: current)
                cursor = nextSibling(of: current)
            }
            return found
        }
        guard let next = child(of: node, named: first) else { return [] }
        return nodes(at: path.dropFirst(), from: next)
    }

    /// The first value recorded at a path from the root (`system/host-name`).
    func firstValue(at path: [String]) -> String? {
        nodes(at: path[...], from: root).lazy.compactMap { values(at: $0).first }.first
    }
}

extension XMLNamePaths: ConfigurationPaths {
    func containsKeyword(_ keyword: String) -> Bool { !nodes(named: keyword).isEmpty }

    /// As a statement reads them: a leaf's value, else its `<name>`.
    func values(at node: Node) -> [String] {
        elements(at: node).compactMap { ($0.isLeaf ? $0.value : $0.value("name"))?.collapsingWhitespace }
    }
}

/// ``ConfigurationPaths`` of a statement tree, built in one walk; nodes live in flat arrays.
struct StatementPaths: ConfigurationPaths {
    struct Node { let index: Int }

    private var keywords: [String] = [""]
    private var firstChildren: [Int] = [-1]
    private var lastChildren: [Int] = [-1]
    private var nextSiblings: [Int] = [-1]
    private var recorded: [Int: [String]] = [:]
    private var allKeywords: Set<String>

    init(_ statement: ConfigStatement) {
        allKeywords = [statement.keyword]
        add(childrenOf: statement, under: 0)
    }

    private mutating func add(childrenOf statement: ConfigStatement, under parent: Int) {
        for child in statement.children {
            let index = node(child.keyword, under: parent)
            if let value = child.value ?? child.identifier, recorded[index] != nil {
                recorded[index]!.append(value)
            }
            add(childrenOf: child, under: index)
        }
    }

    private mutating func node(_ keyword: String, under parent: Int) -> Int {
        var cursor = firstChildren[parent]
        while cursor >= 0 {
            if keywords[cursor] == keyword { return cursor }
            cursor = nextSiblings[cursor]
        }
        let index = keywords.count
        keywords.append(keyword)
        firstChildren.append(-1)
        lastChildren.append(-1)
        nextSiblings.append(-1)
        if lastChildren[parent] >= 0 { nextSiblings[lastChildren[parent]] = index } else { firstChildren[parent] = index }
        lastChildren[parent] = index
        allKeywords.insert(keyword)
        if configurationValueKeywords.contains(keyword) { recorded[index] = [] }
        return index
    }

    var root: Node { Node(index: 0) }

    func child(of node: Node, named keyword: String) -> Node? {
        var cursor = firstChildren[node.index]
        while cursor >= 0 {
            if keywords[cursor] == keyword { return Node(index: cursor) }
            cursor = nextSiblings[cursor]
        }
        return nil
    }

    func firstChild(of node: Node) -> Node? {
        firstChildren[node.index] >= 0 ? Node(index: firstChildren[node.index]) : nil
    }

    func nextSibling(of node: Node) -> Node? {
        nextSiblings[node.index] >= 0 ? Node(index: nextSiblings[node.index]) : nil
    }

    func values(at node: Node) -> [String] { recorded[node.index] ?? [] }

    func containsKeyword(_ keyword: String) -> Bool { allKeywords.contains(keyword) }
}
