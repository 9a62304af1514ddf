/// Something inconsistent inside one advisory record: what it is and how the report read it.
/// Verdicts that rest on such a reading carry its text in `data_warning`.
public struct DataWarning: Codable, Sendable, Equatable, Hashable {
    /// The kinds of self-contradiction the reader recognises.
    public enum Kind: String, Codable, Sendable, CaseIterable {
        /// A range that disagrees with the record's own description.
        case disagreesWithDescription = "disagrees-with-description"
        /// A range whose start lies after its bound.
        case swappedRange = "swapped-range"
        /// A range that holds no release (start equal to its exclusive bound).
        case emptyRange = "empty-range"
        /// A range whose start and bound are on different trains.
        case crossTrainRange = "cross-train-range"
        /// `defaultStatus: affected` that would mark the record's own fixed releases affected.
        case defaultStatusMarksFixed = "default-status-marks-fixed"
        /// An `affected` entry whose text says the release is fixed.
        case fixStatementMarkedAffected = "fix-statement-marked-affected"
        /// A bound that is not a Junos release (`SigPack 3598`).
        case nonReleaseBound = "non-release-bound"
        /// A version field that cannot be read at all.
        case unreadableVersion = "unreadable-version"
        /// Two ranges each bounded on the other's train (`22.2 < 22.3R2-S2` and `22.3 < 22.2R3-S2`).
        case swappedBounds = "swapped-bounds"
        /// A release in an affected and an unaffected range, neither within the other.
        case conflictingStatus = "conflicting-status"
        /// A range's inclusive bound that the solution lists as fixed.
        case boundListedAsFixed = "bound-listed-as-fixed"
    }

    public var cve: String
    public var kind: Kind
    /// What is inconsistent.
    public var detail: String
    /// How the report read it.
    public var reading: String

    public init(cve: String, kind: Kind, detail: String, reading: String) {
        self.cve = cve
        self.kind = kind
        self.detail = detail
        self.reading = reading
    }

    /// One line: `CVE-2020-1617: disagrees-with-description: ...; read as ...`.
    public var text: String { "\(kind.rawValue): \(detail); \(reading)" }
}

/// A data file or record that could not be used: the file, the field and why. Loading goes on
/// without it.
public struct DataProblem: Codable, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    /// The field or line (`containers.cna.affected[0].versions[2].lessThan`, `line 14`).
    public var field: String
    public var message: String

    public init(file: String, field: String, message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String { "\(file): \(field): \(message)" }
}
