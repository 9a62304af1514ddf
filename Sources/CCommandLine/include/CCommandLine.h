#ifndef CARE_COMMAND_LINE_H
#define CARE_COMMAND_LINE_H

/// The argument count glibc handed to the program's initialisers (0 before they ran).
int care_command_line_argc(void);

#endif
