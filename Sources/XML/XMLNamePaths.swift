import CLibXML2

/// The distinct paths of element local names below elements of one document, as a trie: a
/// Junos configuration with 100,000 interfaces has only a few hundred such paths, so "is anything
/// at `system/services/telnet`" is answered without walking the document again.
///
/// Built in one walk that compares libxml2's interned names by pointer (libxml2 stores each
/// distinct name of a parsed document once) and makes no Swift string per element; names that
/// are not interned (edited trees) are compared by their bytes instead. The walk can leave out
/// elements carrying an attribute value (`inactive="inactive"`), treat an element name as a
/// transparent wrapper (`<undocumented>`), and keep the elements of chosen names per path.
public struct XMLNamePaths: @unchecked Sendable {
    /// A place in the trie: the root (where added elements go by default) or one distinct path.
    public struct Node: Hashable, Sendable {
        let index: Int32
    }

    private struct Entry {
        /// The local name; nil for the root.
        var name: UnsafePointer<xmlChar>?
        var nameIsInterned: Bool
        var depth: Int32
        var parent: Int32
        var firstChild: Int32 = -1
        var lastChild: Int32 = -1
        var nextSibling: Int32 = -1
        /// Index into `recorded`, or -1 when this path's elements are not kept.
        var recordedIndex: Int32 = -1
    }

    /// Holds the document whose name pointers the entries keep.
    public let document: XMLDocument
    private var entries: [Entry]
    private var recorded: [[XMLElement]] = []
    private let dict: xmlDictPtr?
    private let leftOutAttribute: (name: String, value: String)?
    private let transparentName: String?
    private let recordedNames: [String]
    /// False once a name that is not in the document's dictionary was added.
    private var allNamesInterned = true

    /// An empty trie for elements of `document`. Elements with the attribute `leftOut` (any
    /// prefix) are skipped with everything below them; elements named `transparent` add their
    /// children in their own place; elements named in `recordedNames` are kept per path, in the
    /// order added.
    public init(document: XMLDocument, leavingOut leftOut: (name: String, value: String)? = nil,
                transparent: String? = nil, recording recordedNames: [String] = []) {
        self.document = document
        self.dict = document.doc.pointee.dict
        self.leftOutAttribute = leftOut
        self.transparentName = transparent
        self.recordedNames = recordedNames
        entries = [Entry(name: nil, nameIsInterned: false, depth: 0, parent: -1)]
    }

    /// The root: the level that ``add(_:under:)`` adds to by default.
    public var root: Node { Node(index: 0) }

    /// Adds `element` and every path below it under `parent`, unless it is left out; a transparent
    /// element adds its children instead.
    public mutating func add(_ element: XMLElement, under parent: Node? = nil) {
        precondition(element.document === document, "XMLNamePaths: element from another document")
        insert(element.node, under: parent?.index ?? 0)
    }

    private func isLeftOut(_ node: xmlNodePtr) -> Bool {
        guard let leftOutAttribute, node.pointee.properties != nil else { return false }
        var cursor = node.pointee.properties
        while let attr = cursor {
            if strcmpName(attr.pointee.name, leftOutAttribute.name) {
                return XMLElement.attributeValue(attr) == leftOutAttribute.value
            }
            cursor = attr.pointee.next
        }
        return false
    }

    private mutating func insert(_ node: xmlNodePtr, under parent: Int32) {
        if isLeftOut(node) { return }
        if let transparentName, strcmpName(node.pointee.name, transparentName) {
            insertChildren(of: node, under: parent)
            return
        }
        let index = entry(named: node.pointee.name, under: parent)
        let recordedIndex = entries[Int(index)].recordedIndex
        if recordedIndex >= 0 { recorded[Int(recordedIndex)].append(XMLElement(document: document, node: node)) }
        insertChildren(of: node, under: index)
    }

    private mutating func insertChildren(of node: xmlNodePtr, under parent: Int32) {
        var cursor = node.pointee.children
        while let current = cursor {
            if current.pointee.type == XML_ELEMENT_NODE { insert(current, under: parent) }
            cursor = current.pointee.next
        }
    }

    /// The entry for `name` below `parent`, made on first sight.
    private mutating func entry(named name: UnsafePointer<xmlChar>, under parent: Int32) -> Int32 {
        // The usual case: the same interned pointer as a path already seen.
        var cursor = entries[Int(parent)].firstChild
        while cursor >= 0 {
            if entries[Int(cursor)].name == name { return cursor }
            cursor = entries[Int(cursor)].nextSibling
        }
        let interned = dict != nil && xmlDictOwns(dict, name) == 1
        cursor = entries[Int(parent)].firstChild
        while cursor >= 0 {
            let existing = entries[Int(cursor)]
            // Two distinct pointers of the same dictionary are two distinct names.
            if !(interned && existing.nameIsInterned), let other = existing.name, xmlStrEqual(other, name) != 0 {
                return cursor
            }
            cursor = existing.nextSibling
        }
        if !interned { allNamesInterned = false }
        var made = Entry(name: name, nameIsInterned: interned, depth: entries[Int(parent)].depth + 1, parent: parent)
        if recordedNames.contains(where: { strcmpName(name, $0) }) {
            made.recordedIndex = Int32(recorded.count)
            recorded.append([])
        }
        let index = Int32(entries.count)
        entries.append(made)
        if entries[Int(parent)].lastChild >= 0 {
            entries[Int(entries[Int(parent)].lastChild)].nextSibling = index
        } else {
            entries[Int(parent)].firstChild = index
        }
        entries[Int(parent)].lastChild = index
        return index
    }

    // MARK: Reading

    /// The local name of a node ("" for the root).
    public func name(of node: Node) -> String {
        entries[Int(node.index)].name.map { String(cString: $0) } ?? ""
    }

    /// How many levels below the root the node is (the root is 0).
    public func depth(of node: Node) -> Int { Int(entries[Int(node.index)].depth) }

    /// The node one level up; nil for the root.
    public func parent(of node: Node) -> Node? {
        let index = entries[Int(node.index)].parent
        return index >= 0 ? Node(index: index) : nil
    }

    /// The names from the root down to `node` (empty for the root).
    public func names(of node: Node) -> [String] {
        var names: [String] = []
        var cursor: Node? = node
        while let current = cursor, current.index > 0 {
            names.append(name(of: current))
            cursor = parent(of: current)
        }
        return names.reversed()
    }

    /// The child path named `name`, if any element took it.
    public func child(of node: Node, named name: String) -> Node? {
        var cursor = entries[Int(node.index)].firstChild
        while cursor >= 0 {
            if strcmpName(entries[Int(cursor)].name, name) { return Node(index: cursor) }
            cursor = entries[Int(cursor)].nextSibling
        }
        return nil
    }

    /// The first child path of `node`, in the order first seen.
    public func firstChild(of node: Node) -> Node? {
        let index = entries[Int(node.index)].firstChild
        return index >= 0 ? Node(index: index) : nil
    }

    /// The next path below the same parent.
    public func nextSibling(of node: Node) -> Node? {
        let index = entries[Int(node.index)].nextSibling
        return index >= 0 ? Node(index: index) : nil
    }

    /// The elements added at `node`, in the order added (empty unless its name is recorded).
    public func elements(at node: Node) -> [XMLElement] {
        let index = entries[Int(node.index)].recordedIndex
        return index >= 0 ? recorded[Int(index)] : []
    }

    /// Every path whose last name is `name`.
    public func nodes(named name: String) -> [Node] {
        var found: [Node] = []
        if allNamesInterned, let dict {
            // A name missing from the document's dictionary is in no element; one present is
            // compared by pointer.
            let length = Int32(name.utf8.count)
            guard let interned = name.withCString({ xmlDictExists(dict, UnsafeRawPointer($0).assumingMemoryBound(to: xmlChar.self), length) }) else {
                return []
            }
            for index in entries.indices.dropFirst() where entries[index].name == interned {
                found.append(Node(index: Int32(index)))
            }
            return found
        }
        for index in entries.indices.dropFirst() where strcmpName(entries[index].name, name) {
            found.append(Node(index: Int32(index)))
        }
        return found
    }

    /// How many distinct paths there are, the root not counted.
    public var count: Int { entries.count - 1 }
}
