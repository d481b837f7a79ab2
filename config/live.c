/*
 * The live config: the running server's current snapshot, swapped whole on
 * reload (see config.h).
 */
#include <pthread.h>
#include <stdlib.h>

#include "config.h"

/*
 * The pointer is swapped atomically; the lock only covers "load the pointer
 * and take a reference", which must not interleave with the writer dropping
 * the last reference of the snapshot being loaded.
 */
struct cfg_live {
    pthread_mutex_t lock;
    _Atomic(const struct cfg *) cur;
};

struct cfg_live *cfg_live_new(const struct cfg *initial)
{
    struct cfg_live *l = calloc(1, sizeof(*l));

    if (!l)
        return NULL;
    pthread_mutex_init(&l->lock, NULL);
    atomic_init(&l->cur, initial);
    return l;
}

void cfg_live_free(struct cfg_live *l)
{
    if (!l)
        return;
    cfg_unref(atomic_load(&l->cur));
    pthread_mutex_destroy(&l->lock);
    free(l);
}

const struct cfg *cfg_live_get(struct cfg_live *l)
{
    const struct cfg *c;

    pthread_mutex_lock(&l->lock);
    c = cfg_ref(atomic_load(&l->cur));
    pthread_mutex_unlock(&l->lock);
    return c;
}

void cfg_live_set(struct cfg_live *l, const struct cfg *next)
{
    const struct cfg *old;

    pthread_mutex_lock(&l->lock);
    old = atomic_exchange(&l->cur, next);
    pthread_mutex_unlock(&l->lock);
    cfg_unref(old);
}
