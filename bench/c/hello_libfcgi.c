/* C libfcgi's server for the benchmark: FCGX_Accept_r on 16 threads, the same answers as
 * every other benchmark server (/big... gets 1 MiB, anything else "hello"; the body is
 * read to its end first). Usage: hello_libfcgi :PORT | /path/to/socket */
#include <fcgiapp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 16
static int sock;
static char chunk[65536];

static void *worker(void *arg) {
    (void)arg;
    FCGX_Request r;
    char buf[65536];
    FCGX_InitRequest(&r, sock, 0);
    while (FCGX_Accept_r(&r) >= 0) {
        while (FCGX_GetStr(buf, sizeof buf, r.in) > 0) {
        }
        const char *uri = FCGX_GetParam("REQUEST_URI", r.envp);
        FCGX_PutS("Content-Type: text/plain\r\n\r\n", r.out);
        if (uri && strncmp(uri, "/big", 4) == 0) {
            for (int i = 0; i < 16; i++) FCGX_PutStr(chunk, sizeof chunk, r.out);
        } else {
            FCGX_PutS("hello", r.out);
        }
        FCGX_Finish_r(&r);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s :PORT|/path/to/socket\n", argv[0]);
        return 2;
    }
    memset(chunk, 'x', sizeof chunk);
    FCGX_Init();
    sock = FCGX_OpenSocket(argv[1], 1024);
    if (sock < 0) {
        perror("FCGX_OpenSocket");
        return 1;
    }
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, worker, NULL);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    return 0;
}
