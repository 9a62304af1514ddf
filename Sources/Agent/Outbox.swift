import Bundle
import Foundation
import Logging
import Synchronization

/// One bundle waiting in an outbox.
public struct OutboxEntry: Sendable, Equatable {
    /// The bundle's name (`<hostname>-<serial>-<time>.tar.gz`), unique in its outbox.
    public var name: String
    /// Bytes it takes (the bundle file's size).
    public var size: Int64
    /// When it entered the outbox (a file outbox: the file's modification time).
    public var added: Date
    /// Why it was collected, from its manifest; `scheduled` when the manifest cannot be read (such
    /// a bundle is still sent: the server decides what it is worth).
    public var trigger: CollectionTrigger
    /// The incident behind an `event` bundle.
    public var event: TriggerEvent?

    public init(name: String, size: Int64, added: Date, trigger: CollectionTrigger, event: TriggerEvent? = nil) {
        self.name = name
        self.size = size
        self.added = added
        self.trigger = trigger
        self.event = event
    }

    /// Upload rank: incidents first (their evidence is what support needs now), then what a person
    /// asked for, then the routine snapshots.
    var uploadRank: Int { Self.rank(of: trigger) }

    /// ``uploadRank`` of a bundle of `trigger`.
    static func rank(of trigger: CollectionTrigger) -> Int {
        switch trigger {
        case .event: return 0
        case .onDemand: return 1
        case .scheduled: return 2
        }
    }

    /// Upload order: by rank, then oldest first, then by name (stable when times are equal).
    static func uploadsBefore(_ a: OutboxEntry, _ b: OutboxEntry) -> Bool {
        if a.uploadRank != b.uploadRank { return a.uploadRank < b.uploadRank }
        if a.added != b.added { return a.added < b.added }
        return a.name < b.name
    }

    /// Eviction order (the quota's policy): oldest scheduled first, then on-demand, event bundles last.
    static func evictedBefore(_ a: OutboxEntry, _ b: OutboxEntry) -> Bool {
        if a.uploadRank != b.uploadRank { return a.uploadRank > b.uploadRank }
        if a.added != b.added { return a.added < b.added }
        return a.name < b.name
    }
}

/// Why an outbox operation failed, naming the bundle and the directory.
public struct OutboxError: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where finished bundles wait until the support side has them: store-and-forward. The uploader
/// takes ``pending()`` in order and settles each bundle with ``accept(_:)`` or ``reject(_:)``;
/// ``enforceQuota(_:now:)`` keeps it within its size and age.
public protocol Outbox: Sendable {
    /// Encodes `contents` and signs it with the outbox's key, ready for ``add(_:)``; CPU work only,
    /// so callers do it in parallel and leave only the write to one writer. `factsJSON`:
    /// ``BundleWriter/factsJSON(_:)`` of `contents.facts` when the caller has it (encoded otherwise).
    func seal(_ contents: BundleContents, factsJSON: [UInt8]?) throws(OutboxError) -> SignedBundle
    /// Stores a sealed bundle; returns its entry.
    @discardableResult
    func add(_ bundle: SignedBundle) throws(OutboxError) -> OutboxEntry
    /// The bundles waiting, in no particular order (counting and sizing need no more; sorting
    /// hundreds of thousands of them through an outage, several times a collection, would cost).
    func entries() -> [OutboxEntry]
    /// The server has the bundle: it leaves the outbox.
    func accept(_ name: String) throws(OutboxError)
    /// The server refused the bundle for good: it leaves the pending ones and is set aside.
    func reject(_ name: String) throws(OutboxError)
    /// Bundles set aside by ``reject(_:)``.
    func rejectedCount() -> Int
    /// Deletes a pending bundle unsent, to honour the quota.
    func evict(_ name: String) throws(OutboxError)
    /// The bundles kept after they left the pending ones (sent with `keep-sent`, rejected), in no
    /// particular order: they count towards the quota too.
    func setAside() -> [SetAsideBundle]
    /// Deletes a kept bundle, to honour the quota.
    func discard(_ bundle: SetAsideBundle) throws(OutboxError)
    /// Dates every bundle (pending and kept) dated before `cutoff` `seconds` later: the wall clock
    /// was stepped forward after they were written (``WallClockSteps``), and their age must not
    /// count the step. Returns how many were redated.
    func redate(before cutoff: Date, by seconds: TimeInterval) -> Int
    /// What was removed to make room for a new bundle on a full disk since the last call (see
    /// ``FileOutbox/add(_:)``): the next quota pass reports and counts it.
    func takeDiskFullRemovals() -> OutboxQuotaPass
}

extension Outbox {
    public func takeDiskFullRemovals() -> OutboxQuotaPass { OutboxQuotaPass() }
}

/// A bundle kept in the outbox after it left the pending ones: in `sent/` (`keep-sent = yes`)
/// or `rejected/` (refused for good), for a person to look at.
public struct SetAsideBundle: Sendable, Equatable {
    public enum Folder: String, Sendable, CaseIterable {
        case sent, rejected
    }

    public var folder: Folder
    public var name: String
    public var size: Int64
    /// When it was set aside (a file outbox: the file's modification time, which a move keeps:
    /// so, when it was written).
    public var added: Date

    public init(folder: Folder, name: String, size: Int64, added: Date) {
        self.folder = folder
        self.name = name
        self.size = size
        self.added = added
    }

    /// The quota's order: sent copies first (the server has them), then rejected ones; oldest
    /// first within each.
    static func discardedBefore(_ a: SetAsideBundle, _ b: SetAsideBundle) -> Bool {
        if a.folder != b.folder { return a.folder == .sent }
        if a.added != b.added { return a.added < b.added }
        return a.name < b.name
    }
}

extension Outbox {
    /// The bundles waiting, in upload order: event, then on-demand, then scheduled; oldest first within each.
    public func pending() -> [OutboxEntry] {
        entries().sorted(by: OutboxEntry.uploadsBefore)
    }

    /// Seals and stores a finished bundle.
    @discardableResult
    public func add(_ contents: BundleContents, factsJSON: [UInt8]? = nil) throws(OutboxError) -> OutboxEntry {
        try add(seal(contents, factsJSON: factsJSON))
    }
}

/// How large and how old an outbox may grow (`outbox-max`, `outbox-max-age`).
public struct OutboxQuota: Sendable, Equatable {
    /// Total bytes of the bundles kept (pending, sent with `keep-sent`, rejected); nil: no limit.
    public var maxBytes: Int64?
    /// Bundles kept longer than this are dropped; nil: no limit.
    public var maxAge: TimeInterval?

    public static let defaultMaxBytes: Int64 = 2 << 30
    public static let defaultMaxAge: TimeInterval = 30 * 86400

    public init(maxBytes: Int64? = OutboxQuota.defaultMaxBytes, maxAge: TimeInterval? = OutboxQuota.defaultMaxAge) {
        self.maxBytes = maxBytes
        self.maxAge = maxAge
    }
}

/// A bundle the quota removed, and why.
public struct OutboxEviction: Sendable, Equatable {
    public enum Reason: String, Sendable, CaseIterable {
        /// Older than `outbox-max-age`.
        case age
        /// The outbox was over `outbox-max`.
        case size
        /// The disk was full when a new bundle was written: older bundles of the same or a lower
        /// rank made room for it (``FileOutbox/add(_:)``).
        case diskFull = "disk-full"
    }

    public var entry: OutboxEntry
    public var reason: Reason
}

/// What a quota pass removed and what it left.
public struct OutboxQuotaPass: Sendable, Equatable {
    /// A kept bundle (sent, rejected) the pass deleted, and why.
    public struct Discarded: Sendable, Equatable {
        public var bundle: SetAsideBundle
        public var reason: OutboxEviction.Reason
    }

    /// Pending bundles deleted unsent, in the order they went.
    public var evicted: [OutboxEviction] = []
    /// Kept bundles deleted, in the order they went.
    public var discarded: [Discarded] = []
    /// The pending bundles left.
    public var remaining = OutboxTotals(bundles: 0, bytes: 0)
}

/// How many bundles an outbox holds and their size: its depth, for status and metrics.
public struct OutboxTotals: Sendable, Equatable {
    public var bundles: Int
    public var bytes: Int64
    /// When the oldest waiting bundle was written (nil: none waits, or not counted): how far
    /// behind the uploads are.
    public var oldest: Date?

    public init(bundles: Int, bytes: Int64, oldest: Date? = nil) {
        self.bundles = bundles
        self.bytes = bytes
        self.oldest = oldest
    }

    init(_ entries: some Sequence<OutboxEntry>) {
        var bundles = 0, bytes: Int64 = 0
        var oldest: Date?
        for entry in entries {
            bundles += 1
            bytes += entry.size
            if oldest.map({ entry.added < $0 }) ?? true { oldest = entry.added }
        }
        self.init(bundles: bundles, bytes: bytes, oldest: oldest)
    }
}

extension Outbox {
    /// Bundles waiting.
    public var depth: Int { entries().count }

    /// Bundles waiting and their size (one scan of the outbox).
    public var totals: OutboxTotals { OutboxTotals(entries()) }

    /// Drops what exceeds `quota`: first every bundle older than the maximum age (stale evidence
    /// helps nobody, whatever its kind), then, while the total is over the maximum size, the
    /// oldest scheduled bundles, then on-demand ones, and event bundles last. Returns what went,
    /// in that order; a bundle that cannot be removed is skipped (and is not in the list). Kept
    /// bundles (sent, rejected) count too and go first: see ``enforceQuotaCounting(_:now:logger:)``.
    @discardableResult
    public func enforceQuota(_ quota: OutboxQuota, now: Date = Date(), logger: Logger? = nil) -> [OutboxEviction] {
        enforceQuotaCounting(quota, now: now, logger: logger).evicted
    }

    /// ``enforceQuota(_:now:logger:)``, with the kept bundles it removed and what stays pending,
    /// counted from the same scan: the metrics written after a collection need no second one
    /// (~1-2 s of CPU per scan of an outbox filled through a long outage). Bundles kept in
    /// `sent/` and `rejected/` are within the same budget (a server refusing every bundle, or
    /// `keep-sent`, filled the disk past it): older than the maximum age, they go; over the size,
    /// they go before any pending bundle, sent copies first, oldest first.
    public func enforceQuotaCounting(_ quota: OutboxQuota, now: Date = Date(), logger: Logger? = nil) -> OutboxQuotaPass {
        var entries = self.entries()
        var kept = setAside()
        let before = OutboxTotals(entries)
        var keptBytes = kept.reduce(Int64(0)) { $0 + $1.size }
        // Removed by a write on a full disk since the last pass: already gone from the listing,
        // reported and counted with this pass.
        var pass = takeDiskFullRemovals()
        pass.remaining = before
        // Within the quota (the usual case, after every collection): nothing to sort.
        let tooOld = quota.maxAge.map { maxAge in
            entries.contains { now.timeIntervalSince($0.added) > maxAge } || kept.contains { now.timeIntervalSince($0.added) > maxAge }
        } ?? false
        let tooLarge = quota.maxBytes.map { before.bytes + keptBytes > $0 } ?? false
        guard tooOld || tooLarge else { return pass }
        let madeRoom = OutboxTotals(pass.evicted.lazy.map(\.entry))
        entries.sort(by: OutboxEntry.evictedBefore)
        kept.sort(by: SetAsideBundle.discardedBefore)
        func drop(_ entry: OutboxEntry, _ reason: OutboxEviction.Reason) -> Bool {
            do {
                try evict(entry.name)
            } catch {
                logger?.error("cannot evict a bundle from the outbox", metadata: ["bundle": "\(entry.name)", "error": "\(error)"])
                return false
            }
            pass.evicted.append(OutboxEviction(entry: entry, reason: reason))
            logger?.warning("outbox quota: bundle evicted unsent", metadata: [
                "bundle": "\(entry.name)", "trigger": "\(entry.trigger.rawValue)", "reason": "\(reason.rawValue)",
                "bytes": "\(entry.size)", "age.seconds": "\(Int(now.timeIntervalSince(entry.added)))",
            ])
            return true
        }
        func drop(_ bundle: SetAsideBundle, _ reason: OutboxEviction.Reason) -> Bool {
            do {
                try discard(bundle)
            } catch {
                logger?.error("cannot remove a kept bundle from the outbox", metadata: [
                    "bundle": "\(bundle.name)", "folder": "\(bundle.folder.rawValue)", "error": "\(error)",
                ])
                return false
            }
            pass.discarded.append(OutboxQuotaPass.Discarded(bundle: bundle, reason: reason))
            keptBytes -= bundle.size
            logger?.notice("outbox quota: kept bundle removed", metadata: [
                "bundle": "\(bundle.name)", "folder": "\(bundle.folder.rawValue)", "reason": "\(reason.rawValue)",
                "bytes": "\(bundle.size)", "age.seconds": "\(Int(now.timeIntervalSince(bundle.added)))",
            ])
            return true
        }
        if let maxAge = quota.maxAge {
            kept.removeAll { now.timeIntervalSince($0.added) > maxAge && drop($0, .age) }
            entries.removeAll { now.timeIntervalSince($0.added) > maxAge && drop($0, .age) }
        }
        if let maxBytes = quota.maxBytes {
            var total = entries.reduce(Int64(0)) { $0 + $1.size } + keptBytes
            for bundle in kept where total > maxBytes {
                if drop(bundle, .size) { total -= bundle.size }
            }
            for entry in entries where total > maxBytes {
                if drop(entry, .size) { total -= entry.size }
            }
        }
        let gone = OutboxTotals(pass.evicted.lazy.map(\.entry))
        let evicted = Set(pass.evicted.map(\.entry.name))
        pass.remaining = OutboxTotals(bundles: before.bundles - gone.bundles + madeRoom.bundles,
                                      bytes: before.bytes - gone.bytes + madeRoom.bytes,
                                      oldest: entries.lazy.filter { !evicted.contains($0.name) }.map(\.added).min())
        return pass
    }
}

/// The outbox as a directory (`outbox` in agent.conf): each bundle one file written crash-safely
/// by ``BundleWriter``; accepted bundles are deleted (or moved to `sent/` with `keep-sent`), refused
/// ones moved to `rejected/`, each change made durable by an fsync of the directory. The trigger
/// of each bundle is read from its manifest once and remembered while the file is unchanged.
/// Another process (`collect now --standalone`) may add bundles at any time: nothing but the
/// directory is the truth.
public final class FileOutbox: Outbox, @unchecked Sendable {
    public let directory: String
    /// Accepted bundles are moved to `sent/` instead of deleted (`keep-sent`).
    public let keepsSent: Bool
    private let writer: BundleWriter?
    private let lock = NSLock()
    /// What is remembered of a bundle file. `listedInode`: its inode as the directory listing
    /// gives it (`d_ino`, which an overlay file system may number apart from `stat`'s), once seen
    /// there: a bundle is never changed in place (it is written aside and renamed), so a name
    /// listed with the same inode is the same file, and needs no `lstat`.
    private struct Known { var size: Int64; var modified: Date; var inode: UInt64; var listedInode: UInt64?; var trigger: CollectionTrigger; var event: TriggerEvent? }
    private var known: [String: Known] = [:]
    /// What is remembered of a kept bundle (`sent/NAME`, `rejected/NAME`), by its listed inode.
    private var keptKnown: [String: (inode: UInt64, size: Int64, modified: Date)] = [:]
    /// How many bundles are remembered (for tests: it must not grow with what was written).
    var rememberedCount: Int { lock.withLock { known.count } }

    /// Where ``add(_:)`` says what it removed to make room on a full disk.
    private let logger: Logger?

    /// `key` signs what ``add(_:)`` stores; an outbox opened only to read and settle needs none.
    public init(directory: String, key: AgentKey? = nil, keepsSent: Bool = false, logger: Logger? = nil) {
        self.directory = directory
        self.keepsSent = keepsSent
        self.logger = logger
        writer = key.map { BundleWriter(directory: URL(fileURLWithPath: directory), key: $0) }
    }

    /// Removals made room with, per outbox directory, until a quota pass takes them: the agent
    /// writes through its sink's outbox and counts through its own (two instances, one directory).
    private static let diskFullRemovals = Mutex<[String: OutboxQuotaPass]>([:])

    public func takeDiskFullRemovals() -> OutboxQuotaPass {
        Self.diskFullRemovals.withLock { $0.removeValue(forKey: directory) } ?? OutboxQuotaPass()
    }

    /// The file of bundle `name`.
    public func path(of name: String) -> String { directory + "/" + name }

    public func seal(_ contents: BundleContents, factsJSON: [UInt8]?) throws(OutboxError) -> SignedBundle {
        guard let writer else { throw OutboxError("the outbox \(directory) was opened without the agent key: it cannot sign bundles") }
        do { return try SignedBundle(contents, key: writer.key, factsJSON: factsJSON) } catch {
            throw OutboxError("cannot encode the bundle of \(contents.device.name): \(error)")
        }
    }

    public func add(_ bundle: SignedBundle) throws(OutboxError) -> OutboxEntry {
        guard let writer else { throw OutboxError("the outbox \(directory) was opened without the agent key: it cannot sign bundles") }
        let url: URL
        // The writer's message names the file and the system call; it is the whole story.
        do { url = try writer.write(bundle) } catch {
            guard error.isOutOfSpace else { throw OutboxError("\(error)") }
            // A full disk (the outbox's file system shared with logs, an outage longer than the
            // quota allows for): the new bundle is the evidence of now, an incident's above all.
            // Kept copies go first, then pending bundles not ranked above it, as the quota orders.
            guard makeRoom(for: bundle, after: error) else {
                throw OutboxError("\(error); the bundles in the outbox ranked at or below this \(bundle.trigger.rawValue) bundle (sent and rejected copies, then older scheduled, on-demand, event ones) do not free enough to make room")
            }
            do { url = try writer.write(bundle) } catch { throw OutboxError("\(error)") }
        }
        let name = url.lastPathComponent
        // Remembered from the bundle, not read back from the file just written.
        guard let entry = entry(name, known: (bundle.trigger, bundle.event)) else {
            throw OutboxError("the bundle \(name) vanished from \(directory) as it was written")
        }
        return entry
    }

    /// Removes what the file system needs freed for `bundle` (its size, less what is free, plus
    /// a margin for blocks and the directory): kept bundles (sent copies, then rejected ones,
    /// oldest first), then pending bundles of the same or a lower rank in the quota's eviction
    /// order. Nothing is removed unless that frees enough. Each removal is logged and recorded for
    /// the next quota pass. Returns whether anything was removed.
    private func makeRoom(for bundle: SignedBundle, after failure: BundleWriteError) -> Bool {
        var fs = statvfs()
        guard statvfs(directory, &fs) == 0 else { return false }
        // Counted in the file system's blocks, which is what a file takes and frees; two more for
        // the temporary file's directory entry and what the file system keeps aside.
        let block = max(Int64(fs.f_frsize), 512)
        func blocks(_ bytes: Int64) -> Int64 { (bytes + block - 1) / block * block }
        // The write may fail although blocks are free: a user quota (EDQUOT, which statvfs does
        // not show) needs the bundle's own size freed; no inode left (ENOSPC with blocks free)
        // needs files gone, whatever their size.
        let bundleBlocks = blocks(Int64(bundle.bytes.count)) + 2 * block
        let shortOfBlocks = bundleBlocks - Int64(fs.f_bavail) * block
        let quota = if case let .system(_, _, code) = failure, code == EDQUOT { true } else { false }
        let needed = shortOfBlocks > 0 ? shortOfBlocks : (quota ? bundleBlocks : 0)
        // Files: the temporary one, and the link to its name (tmpfs counts each against its inodes).
        let filesNeeded = shortOfBlocks > 0 || quota ? 0 : 2
        let rank = OutboxEntry.rank(of: bundle.trigger)
        let kept = setAside().sorted(by: SetAsideBundle.discardedBefore)
        let pending = entries().filter { $0.uploadRank >= rank }.sorted(by: OutboxEntry.evictedBefore)
        var chosen: (kept: [SetAsideBundle], pending: [OutboxEntry]) = ([], [])
        var freed: Int64 = 0
        func enough() -> Bool { freed >= needed && chosen.kept.count + chosen.pending.count >= filesNeeded }
        for copy in kept where !enough() {
            chosen.kept.append(copy)
            freed += blocks(copy.size)
        }
        for entry in pending where !enough() {
            chosen.pending.append(entry)
            freed += blocks(entry.size)
        }
        guard enough() else { return false }
        var pass = OutboxQuotaPass()
        let now = Date()
        for copy in chosen.kept {
            do { try discard(copy) } catch {
                logger?.error("cannot remove a kept bundle from the outbox", metadata: ["bundle": "\(copy.name)", "error": "\(error)"])
                continue
            }
            pass.discarded.append(OutboxQuotaPass.Discarded(bundle: copy, reason: .diskFull))
            logger?.warning("disk full: kept bundle removed to make room for a new one", metadata: [
                "bundle": "\(copy.name)", "folder": "\(copy.folder.rawValue)", "bytes": "\(copy.size)",
                "new.bundle": "\(bundle.baseName)", "new.trigger": "\(bundle.trigger.rawValue)",
            ])
        }
        for entry in chosen.pending {
            do { try evict(entry.name) } catch {
                logger?.error("cannot evict a bundle from the outbox", metadata: ["bundle": "\(entry.name)", "error": "\(error)"])
                continue
            }
            pass.evicted.append(OutboxEviction(entry: entry, reason: .diskFull))
            logger?.warning("disk full: bundle evicted unsent to make room for a new one", metadata: [
                "bundle": "\(entry.name)", "trigger": "\(entry.trigger.rawValue)", "bytes": "\(entry.size)",
                "age.seconds": "\(Int(now.timeIntervalSince(entry.added)))",
                "new.bundle": "\(bundle.baseName)", "new.trigger": "\(bundle.trigger.rawValue)",
            ])
        }
        guard !pass.evicted.isEmpty || !pass.discarded.isEmpty else { return false }
        Self.diskFullRemovals.withLock { all in
            all[directory, default: OutboxQuotaPass()].evicted += pass.evicted
            all[directory, default: OutboxQuotaPass()].discarded += pass.discarded
        }
        return true
    }

    /// The finished bundles. The outbox can hold hundreds of thousands of them through an upload
    /// outage, and every collection and upload pass asks: a bundle already known costs a look-up
    /// by its listed name and inode, not an `lstat` (nor a manifest read).
    public func entries() -> [OutboxEntry] {
        let listing = Self.bundleFiles(in: directory)
        let entries = listing.compactMap { entry($0.name, listedInode: $0.inode) }
        // A set: looking each remembered bundle up in the listing itself was quadratic (seconds
        // per call at 19,000 bundles).
        let present = Set(listing.map(\.name))
        lock.lock()
        known = known.filter { present.contains($0.key) }
        lock.unlock()
        return entries
    }

    /// The bundle files' names in `directory` with their inodes as listed; only regular files
    /// (and those of unknown type, which ``entry(_:listedInode:known:)`` checks).
    static func bundleFiles(in directory: String) -> [(name: String, inode: UInt64)] {
        guard let stream = opendir(directory) else { return [] }
        defer { closedir(stream) }
        var files: [(name: String, inode: UInt64)] = []
        while let item = readdir(stream) {
            let type = item.pointee.d_type
            guard type == UInt8(DT_REG) || type == UInt8(DT_UNKNOWN) else { continue }
            let name = withUnsafePointer(to: &item.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if BundleFileName.isBundle(name) { files.append((name, UInt64(item.pointee.d_ino))) }
        }
        return files
    }

    /// The entry of a finished bundle file, its manifest read unless already known unchanged
    /// (or `known`: the trigger and event of a bundle this outbox just wrote).
    private func entry(_ name: String, listedInode: UInt64? = nil, known written: (CollectionTrigger, TriggerEvent?)? = nil) -> OutboxEntry? {
        if let listedInode {
            lock.lock()
            let cached = known[name]
            lock.unlock()
            if let cached, cached.listedInode == listedInode {
                return OutboxEntry(name: name, size: cached.size, added: cached.modified, trigger: cached.trigger, event: cached.event)
            }
        }
        var info = stat()
        guard lstat(path(of: name), &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let size = Int64(info.st_size)
        let modified = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
        let inode = UInt64(info.st_ino)
        lock.lock()
        let cached = known[name]
        lock.unlock()
        if let cached, cached.size == size, cached.modified == modified, cached.inode == inode {
            if let listedInode, cached.listedInode != listedInode {
                lock.lock()
                known[name]?.listedInode = listedInode
                lock.unlock()
            }
            return OutboxEntry(name: name, size: size, added: modified, trigger: cached.trigger, event: cached.event)
        }
        let trigger: CollectionTrigger, event: TriggerEvent?
        if let written {
            (trigger, event) = written
        } else {
            let manifest = try? BundleReader.unverifiedManifest(atPath: path(of: name))
            trigger = manifest?.collection.trigger ?? .scheduled
            event = manifest?.collection.event
        }
        // A bundle this outbox just wrote is not remembered: only listing forgets what is gone, and
        // the outbox a collector writes through (its sink) never lists, so it remembered every
        // bundle it ever wrote (~1,000 more entries per collection of 1,000 devices, for the
        // agent's life; found by a soak run). The outbox that lists reads the manifest once.
        if written == nil {
            lock.lock()
            known[name] = Known(size: size, modified: modified, inode: inode, listedInode: listedInode, trigger: trigger, event: event)
            lock.unlock()
        }
        return OutboxEntry(name: name, size: size, added: modified, trigger: trigger, event: event)
    }

    public func accept(_ name: String) throws(OutboxError) {
        try settle(name, into: keepsSent ? "sent" : nil)
    }

    public func reject(_ name: String) throws(OutboxError) {
        try settle(name, into: "rejected")
    }

    public func evict(_ name: String) throws(OutboxError) {
        try settle(name, into: nil)
    }

    public func rejectedCount() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/rejected")) ?? []).filter(BundleFileName.isBundle).count
    }

    /// The bundle files in `sent/` and `rejected/`; each `lstat`ed once while its listed inode
    /// stays the same (`keep-sent` can keep as many as the budget holds).
    public func setAside() -> [SetAsideBundle] {
        var found: [SetAsideBundle] = []
        var present = Set<String>()
        for folder in SetAsideBundle.Folder.allCases {
            let path = directory + "/" + folder.rawValue
            for file in Self.bundleFiles(in: path) {
                let key = folder.rawValue + "/" + file.name
                present.insert(key)
                let cached = lock.withLock { keptKnown[key] }
                if let cached, cached.inode == file.inode {
                    found.append(SetAsideBundle(folder: folder, name: file.name, size: cached.size, added: cached.modified))
                    continue
                }
                var info = stat()
                guard lstat(path + "/" + file.name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
                let modified = Date(timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
                lock.withLock { keptKnown[key] = (file.inode, Int64(info.st_size), modified) }
                found.append(SetAsideBundle(folder: folder, name: file.name, size: Int64(info.st_size), added: modified))
            }
        }
        lock.withLock { keptKnown = keptKnown.filter { present.contains($0.key) } }
        return found
    }

    public func discard(_ bundle: SetAsideBundle) throws(OutboxError) {
        guard BundleFileName.isBundle(bundle.name), !bundle.name.contains("/") else { throw OutboxError("\(bundle.name) is not a bundle name") }
        let folder = directory + "/" + bundle.folder.rawValue
        guard unlink(folder + "/" + bundle.name) == 0 else {
            throw OutboxError(errno == ENOENT ? "no bundle \(bundle.name) in \(folder)"
                                              : "cannot remove \(folder)/\(bundle.name): \(String(cString: strerror(errno)))")
        }
        Self.syncDirectory(folder)
        lock.withLock { keptKnown[bundle.folder.rawValue + "/" + bundle.name] = nil }
    }

    public func redate(before cutoff: Date, by seconds: TimeInterval) -> Int {
        var redated = 0
        for folder in [nil] + SetAsideBundle.Folder.allCases.map(Optional.some) {
            let path = folder.map { directory + "/" + $0.rawValue } ?? directory
            for file in Self.bundleFiles(in: path) {
                var info = stat()
                let filePath = path + "/" + file.name
                guard lstat(filePath, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
                let modified = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
                guard modified < cutoff.timeIntervalSince1970 else { continue }
                let moved = modified + seconds
                // UTIME_OMIT ((1 << 30) - 2, a macro Swift does not import): the access time stays.
                var times = [timespec(tv_sec: 0, tv_nsec: (1 << 30) - 2),
                             timespec(tv_sec: Int(moved.rounded(.down)), tv_nsec: Int((moved - moved.rounded(.down)) * 1e9))]
                guard utimensat(AT_FDCWD, filePath, &times, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
                redated += 1
                // What is remembered of the file takes the new date too (forgetting it would read
                // every manifest again at the next scan).
                let date = Date(timeIntervalSince1970: Double(times[1].tv_sec) + Double(times[1].tv_nsec) / 1e9)
                lock.withLock {
                    if let folder {
                        keptKnown[folder.rawValue + "/" + file.name]?.modified = date
                    } else {
                        known[file.name]?.modified = date
                    }
                }
            }
        }
        return redated
    }

    /// Deletes `name`, or moves it into `<directory>/<folder>/`; then makes the directory change
    /// durable so that a crash cannot bring a settled bundle back.
    private func settle(_ name: String, into folder: String?) throws(OutboxError) {
        guard BundleFileName.isBundle(name), !name.contains("/") else { throw OutboxError("\(name) is not a bundle name") }
        let path = path(of: name)
        if let folder {
            let target = directory + "/" + folder
            if mkdir(target, 0o750) != 0 && errno != EEXIST {
                throw OutboxError("cannot create \(target): \(String(cString: strerror(errno)))")
            }
            // Never over a bundle already there: names repeat (two collections of a device in one
            // second, devices without a serial, a clock stepped back), and a rename would destroy
            // the earlier one (the evidence of a rejected bundle, a kept sent copy). Linked under
            // the first free `NAME`, `NAME-2`, ... then unlinked from the outbox.
            var destination = target + "/" + name
            var number = 1
            while link(path, destination) != 0 {
                if errno == ENOENT { throw OutboxError("no bundle \(name) in the outbox \(directory)") }
                guard errno == EEXIST, number < 1000 else {
                    throw OutboxError("cannot move \(path) to \(target)/: \(String(cString: strerror(errno)))")
                }
                number += 1
                destination = target + "/" + String(name.dropLast(BundleFileName.suffix.count)) + "-\(number)" + BundleFileName.suffix
            }
            Self.syncDirectory(target)
            guard unlink(path) == 0 else {
                throw OutboxError("cannot remove \(path) after keeping it in \(target)/: \(String(cString: strerror(errno)))")
            }
        } else {
            guard unlink(path) == 0 else {
                throw OutboxError(errno == ENOENT ? "no bundle \(name) in the outbox \(directory)"
                                                  : "cannot remove \(path): \(String(cString: strerror(errno)))")
            }
        }
        Self.syncDirectory(directory)
        lock.lock()
        known[name] = nil
        lock.unlock()
    }

    static func syncDirectory(_ path: String) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { return }
        fsync(fd)
        close(fd)
    }
}

/// An outbox in memory, for unit tests of what uses an outbox; it behaves as ``FileOutbox`` does
/// (the same conformance suite runs against both) but nothing survives the process.
public final class InMemoryOutbox: Outbox, @unchecked Sendable {
    private let key: AgentKey
    private let lock = NSLock()
    private var bundles: [String: (entry: OutboxEntry, bytes: [UInt8])] = [:]
    private var rejected: [String: (bytes: [UInt8], added: Date)] = [:]
    public init(key: AgentKey) { self.key = key }

    public func seal(_ contents: BundleContents, factsJSON: [UInt8]?) throws(OutboxError) -> SignedBundle {
        do { return try SignedBundle(contents, key: key, factsJSON: factsJSON) } catch {
            throw OutboxError("cannot encode the bundle of \(contents.device.name): \(error)")
        }
    }

    public func add(_ bundle: SignedBundle) throws(OutboxError) -> OutboxEntry {
        lock.lock(); defer { lock.unlock() }
        let base = bundle.baseName
        var name = base + BundleFileName.suffix
        var n = 2
        while bundles[name] != nil || rejected[name] != nil { name = "\(base)-\(n)\(BundleFileName.suffix)"; n += 1 }
        let entry = OutboxEntry(name: name, size: Int64(bundle.bytes.count), added: Date(), trigger: bundle.trigger, event: bundle.event)
        bundles[name] = (entry, bundle.bytes)
        return entry
    }

    public func entries() -> [OutboxEntry] {
        lock.lock(); defer { lock.unlock() }
        return bundles.values.map(\.entry)
    }

    /// Dates a pending bundle as if added at `date` (what a file's modification time does for ``FileOutbox``).
    public func backdate(_ name: String, to date: Date) {
        lock.lock(); bundles[name]?.entry.added = date; lock.unlock()
    }

    /// The bytes of a pending bundle (what an upload would send).
    public func bytes(of name: String) -> [UInt8]? { lock.lock(); defer { lock.unlock() }; return bundles[name]?.bytes }

    public func accept(_ name: String) throws(OutboxError) { _ = try take(name) }

    public func reject(_ name: String) throws(OutboxError) {
        lock.lock(); let added = bundles[name]?.entry.added; lock.unlock()
        let bytes = try take(name)
        lock.lock(); rejected[name] = (bytes, added ?? Date()); lock.unlock()
    }

    public func evict(_ name: String) throws(OutboxError) { _ = try take(name) }

    public func rejectedCount() -> Int { lock.lock(); defer { lock.unlock() }; return rejected.count }

    public func setAside() -> [SetAsideBundle] {
        lock.lock(); defer { lock.unlock() }
        return rejected.map { SetAsideBundle(folder: .rejected, name: $0.key, size: Int64($0.value.bytes.count), added: $0.value.added) }
    }

    public func discard(_ bundle: SetAsideBundle) throws(OutboxError) {
        lock.lock(); defer { lock.unlock() }
        guard bundle.folder == .rejected, rejected.removeValue(forKey: bundle.name) != nil else {
            throw OutboxError("no bundle \(bundle.name) in \(bundle.folder.rawValue)")
        }
    }

    public func redate(before cutoff: Date, by seconds: TimeInterval) -> Int {
        lock.lock(); defer { lock.unlock() }
        var redated = 0
        for (name, bundle) in bundles where bundle.entry.added < cutoff {
            bundles[name]?.entry.added = bundle.entry.added.addingTimeInterval(seconds)
            redated += 1
        }
        for (name, bundle) in rejected where bundle.added < cutoff {
            rejected[name]?.added = bundle.added.addingTimeInterval(seconds)
            redated += 1
        }
        return redated
    }

    private func take(_ name: String) throws(OutboxError) -> [UInt8] {
        lock.lock(); defer { lock.unlock() }
        guard let bundle = bundles.removeValue(forKey: name) else { throw OutboxError("no bundle \(name) in the outbox") }
        return bundle.bytes
    }
}
