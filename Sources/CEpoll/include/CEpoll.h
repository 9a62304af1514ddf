#ifndef CARE_AGENT_CEPOLL_H
#define CARE_AGENT_CEPOLL_H
/* Glibc's Swift module does not export epoll or eventfd. */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <netinet/tcp.h>
#endif
