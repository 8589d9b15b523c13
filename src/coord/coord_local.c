/*
 * coord_local.c - coordination inside one process: the embedded server's control plane and
 * its one executor.
 *
 * A request goes straight to the member's submit; the member answers on its own thread
 * (its loop, or at once for reads it can do anywhere), and the answer is queued here and
 * handed to the caller on the caller's loop through one uv_async.  So the caller sees the
 * same asynchronous contract as with a remote executor, and neither loop ever waits for
 * the other.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"

struct pending {
    coord_cb cb;
    void *arg;
    struct local *owner;
};

struct local {
    struct coord base; /* first: a struct coord * is a struct local * */
    struct coord_member member;
    uv_async_t async;
    pthread_mutex_t mu;
    struct coord_request *head, *tail; /* answered, not yet handed over, in order */
    bool closing;
};

/* Called by the member, on its thread, once req is answered. */
static void local_done(struct coord_request *req)
{
    struct pending *p = req->impl;
    struct local *c = p->owner;
    snprintf(req->reply.executor, sizeof req->reply.executor, "%s", c->member.id);
    req->next = NULL;
    pthread_mutex_lock(&c->mu);
    if (c->tail != NULL)
        c->tail->next = req;
    else
        c->head = req;
    c->tail = req;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
}

static void on_answers(uv_async_t *h)
{
    struct local *c = h->data;
    pthread_mutex_lock(&c->mu);
    struct coord_request *req = c->head;
    c->head = c->tail = NULL;
    pthread_mutex_unlock(&c->mu);
    while (req != NULL) {
        struct coord_request *next = req->next;
        struct pending *p = req->impl;
        p->cb(p->arg, &req->reply);
        free(p);
        req->impl = NULL;
        coord_request_free(req);
        req = next;
    }
}

static int local_send(struct coord *base, const char *executor, struct coord_request *req,
                      coord_cb cb, void *arg)
{
    struct local *c = (struct local *)base;
    if (executor != NULL && executor[0] != '\0' && strcmp(executor, c->member.id) != 0) {
        coord_request_free(req);
        return TY_ENOENT;
    }
    struct pending *p = malloc(sizeof *p);
    if (p == NULL || c->closing) {
        free(p);
        coord_request_free(req);
        return c->closing ? TY_EUNAVAIL : TY_ENOMEM;
    }
    p->cb = cb;
    p->arg = arg;
    p->owner = c;
    req->impl = p;
    req->done = local_done;
    int rc = c->member.submit(c->member.arg, req);
    if (rc != 0) {
        free(p);
        req->impl = NULL;
        coord_request_free(req);
    }
    return rc;
}

static void closed(uv_handle_t *h)
{
    struct local *c = h->data;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void local_close(struct coord *base)
{
    struct local *c = (struct local *)base;
    c->closing = true;
    on_answers(&c->async); /* answers that came after the last wake-up */
    uv_close((uv_handle_t *)&c->async, closed);
}

static const struct coord_ops local_ops = {local_close, local_send};

int coord_local_new(uv_loop_t *loop, const struct coord_member *member, struct coord **out,
                    struct ty_err *err)
{
    struct local *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ty_error(err, TY_ENOMEM, NULL, -1, 0, "out of memory");
    c->base.ops = &local_ops;
    c->member = *member;
    pthread_mutex_init(&c->mu, NULL);
    if (uv_async_init(loop, &c->async, on_answers) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return ty_error(err, TY_EIO, NULL, -1, 0, "cannot make the coordination's wake-up");
    }
    c->async.data = c;
    *out = &c->base;
    return 0;
}
