#ifndef CARE_AGENT_CLIBXML2_SHIM_H
#define CARE_AGENT_CLIBXML2_SHIM_H
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlsave.h>

/* xmlFree is a global function pointer that Swift 6 refuses to touch: call it here. */
static inline void care_xml_free(void *p) { xmlFree(p); }
#endif
