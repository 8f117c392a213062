/*
 * main.c - outboxd's entry point; the daemon is daemon.c (daemon.h says
 * why it is apart).
 */
#include "daemon.h"

int main(int argc, char **argv) {
    return outboxd_daemon_main(argc, argv, NULL);
}
