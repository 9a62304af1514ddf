#ifndef CARE_AGENT_CEPOLL_H
#define CARE_AGENT_CEPOLL_H
/* Glibc's Swift module does not export epoll, eventfd or malloc_trim. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/tcp.h>
#include <malloc.h>
#endif
