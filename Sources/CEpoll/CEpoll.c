/* Header-only shim; SwiftPM needs one source file. */
