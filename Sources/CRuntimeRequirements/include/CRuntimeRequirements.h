#ifndef CARE_RUNTIME_REQUIREMENTS_H
#define CARE_RUNTIME_REQUIREMENTS_H

/* Nothing to call: linking this target in adds a check that runs before main (see the .c file). */

#endif
