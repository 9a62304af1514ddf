import XML

/// What the server session learned from received bytes.
public enum ServerSessionEvent: Sendable {
    /// The client's hello; framing is now negotiated.
    case hello(Hello)
    /// An `<rpc>`: its message-id (if any) and the operation element.
    case rpc(messageID: String?, operation: XMLElement)
    /// A message that is not a well-formed `<rpc>`; reply with this error.
    case malformed(messageID: String?, error: String)
}

/// The server side of a NETCONF session as a pure state machine (used by the device simulator).
public struct ServerSession: Sendable {
    public enum State: Sendable, Equatable { case awaitingHello, established, closed }
    public private(set) var state: State = .awaitingHello
    public let localHello: Hello
    private var decoder = FrameDecoder(mode: .endOfMessage)

    public init(capabilities: [String], sessionID: String) {
        localHello = Hello(capabilities: capabilities, sessionID: sessionID)
    }

    public var framing: FramingMode { decoder.mode }

    /// The server hello, end-of-message framed.
    public func helloBytes() -> [UInt8] {
        FrameEncoder.encode(localHello.xml(), mode: .endOfMessage)
    }

    public mutating func receive(_ bytes: some Sequence<UInt8>) throws(NETCONFError) -> [ServerSessionEvent] {
        decoder.append(bytes)
        var events: [ServerSessionEvent] = []
        while true {
            let message: [UInt8]?
            do { message = try decoder.nextMessage() } catch { throw .framing(peer: "client", error) }
            guard let message else { return events }
            if message.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { continue }
            let document: XMLDocument
            do {
                document = try XMLDocument(bytes: message)
            } catch {
                events.append(.malformed(messageID: nil, error: "\(error)"))
                continue
            }
            switch state {
            case .awaitingHello:
                let hello = try Hello(document: document)
                decoder.mode = Hello.negotiatedFraming(local: localHello.capabilities, remote: hello.capabilities)
                state = .established
                events.append(.hello(hello))
            case .established:
                let root = document.root
                let id = root.attribute("message-id")
                guard root.name == "rpc", let operation = root.children.first else {
                    events.append(.malformed(messageID: id, error: "expected <rpc> with an operation, received <\(root.name)>"))
                    continue
                }
                events.append(.rpc(messageID: id, operation: operation))
            case .closed:
                continue
            }
        }
    }

    /// Frames a reply in the negotiated framing.
    public func frame(_ reply: [UInt8]) -> [UInt8] {
        FrameEncoder.encode(reply, mode: decoder.mode)
    }

    public mutating func close() { state = .closed }
}
