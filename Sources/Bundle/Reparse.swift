import Junos

extension DeviceFacts {
    /// Facts rebuilt from stored replies with today's parsers: each reply whose RPC is a known
    /// ``FactKind`` is parsed and absorbed; failures land in `parseErrors`, as in a live collection.
    public static func parsed(from replies: [RawReply]) -> DeviceFacts {
        var facts = DeviceFacts()
        for reply in replies {
            guard let kind = FactKind(rpc: reply.rpc) else { continue }
            do {
                let parsed = try JunosReply(bytes: reply.bytes)
                try? facts.absorb(parsed, as: kind)
            } catch {
                facts.parseErrors[reply.rpc] = JunosParseError.malformedXML(rpc: reply.rpc, error).description
            }
        }
        return facts
    }
}
