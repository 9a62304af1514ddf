#ifndef CARE_AGENT_CLIBXML2_SHIM_H
#define CARE_AGENT_CLIBXML2_SHIM_H
#include <libxml/xmlversion.h>
/* Debian's libxml2 is built with ICU, so encoding.h includes the system's <unicode/*.h>.
 * Foundation ships its own ICU headers (_FoundationICU) whose UErrorCode differs, and clang
 * refuses a module that sees both. We never touch the ICU members of xmlCharEncodingHandler
 * (only pointers to it), so hide them from Swift. */
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>

/* xmlFree is a global function pointer that Swift 6 refuses to touch: call it here. */
static inline void care_xml_free(void *p) { xmlFree(p); }
#endif
