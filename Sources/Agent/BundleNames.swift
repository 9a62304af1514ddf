// Bundle's types whose names Agent also uses. This file imports neither Foundation (whose
// `Bundle` class would hide the module's name) nor anything else, so `Bundle.` means the module.
import Bundle

typealias BundleRPCOutcome = Bundle.RPCOutcome
typealias BundleCollectionTrigger = Bundle.CollectionTrigger
