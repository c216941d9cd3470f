/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/loop.c's timer heap and fd registry through the internal
 * API, with a fake clock: the loop's time is set by hand (loop.now_us, or the
 * injected loop.clock_us), so nothing sleeps and every result is exact. No fd
 * here is a real descriptor: the registry only files them by number. */
#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/error.h"
#include "loop.h"

/* ---- helpers ---- */

/* A small deterministic generator (xorshift64*) for insert orders and due
 * times, so that a failure replays identically. */
static uint64_t rng_state;

static void rng_seed(uint64_t seed)
{
    rng_state = seed ? seed : 0x9E3779B97F4A7C15u;
}

static uint64_t rng_next(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1Du;
}

static size_t rng_below(size_t n)
{
    return (size_t)(rng_next() % n);
}

static void shuffle(size_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rng_below(i);
        size_t tmp = v[i - 1];
        v[i - 1] = v[j];
        v[j] = tmp;
    }
}

/* A timer with an identity, and what its fire callback should do to others. */
struct tt {
    struct dp_timer timer;
    size_t id;
    unsigned fired;
    struct dp_loop *loop;
    struct tt *cancel_other; /* cancelled when this one fires */
    struct tt *arm_other;    /* (re)armed at arm_other_due when this one fires */
    uint64_t arm_other_due;
    uint64_t rearm_self_after; /* re-armed at now + this when fired, if non-zero */
};

/* The order in which timers fired, and the loop time and due time each saw. */
#define FIRE_LOG_CAP 20000
static size_t fire_log[FIRE_LOG_CAP];
static uint64_t fire_due[FIRE_LOG_CAP];
static uint64_t fire_now[FIRE_LOG_CAP];
static size_t fire_count;

static struct tt *tt_of(struct dp_timer *t)
{
    return (struct tt *)((char *)t - offsetof(struct tt, timer));
}

static void on_fire(struct dp_timer *t)
{
    struct tt *x = tt_of(t);
    ck_assert_msg(!dp_timer_armed(t), "a timer is idle when it fires");
    ck_assert_uint_lt(fire_count, FIRE_LOG_CAP);
    fire_log[fire_count] = x->id;
    fire_due[fire_count] = t->due_us;
    fire_now[fire_count] = x->loop->now_us;
    fire_count++;
    x->fired++;
    if (x->cancel_other != NULL)
        dp_timer_cancel(x->loop, &x->cancel_other->timer);
    if (x->arm_other != NULL)
        ck_assert_int_eq(dp_timer_set(x->loop, &x->arm_other->timer, x->arm_other_due), 0);
    if (x->rearm_self_after != 0)
        ck_assert_int_eq(dp_timer_set(x->loop, t, x->loop->now_us + x->rearm_self_after), 0);
}

static void tt_init(struct tt *x, struct dp_loop *loop, size_t id)
{
    memset(x, 0, sizeof *x);
    dp_timer_init(&x->timer, on_fire);
    x->id = id;
    x->loop = loop;
}

/* The fake clock read by dp_loop_update_time(). */
static uint64_t fake_now_us;

static uint64_t fake_clock(void)
{
    return fake_now_us;
}

static void loop_setup(struct dp_loop *loop, uint64_t now_us)
{
    ck_assert_int_eq(dp_loop_init(loop), 0);
    fake_now_us = now_us;
    loop->clock_us = fake_clock;
    loop->now_us = now_us;
    fire_count = 0;
}

/* Run the timers as of time now_us. */
static void run_at(struct dp_loop *loop, uint64_t now_us)
{
    loop->now_us = now_us;
    dp_loop_run_timers(loop);
}

/* The heap's shape: every parent due no later than its children, every
 * timer knows its own slot, and next_due is the root's due time. */
static void check_heap(const struct dp_loop *loop)
{
    ck_assert_uint_le(loop->heap_len, loop->heap_cap);
    for (size_t i = 0; i < loop->heap_len; i++) {
        ck_assert_uint_eq(loop->heap[i]->heap_idx, i);
        if (i > 0)
            ck_assert_uint_le(loop->heap[(i - 1) / 2]->due_us, loop->heap[i]->due_us);
    }
    if (loop->heap_len == 0)
        ck_assert_uint_eq(dp_loop_next_due(loop), UINT64_MAX);
    else
        ck_assert_uint_eq(dp_loop_next_due(loop), loop->heap[0]->due_us);
}

/* The fire log is in due order, and each fire happened once it was due. */
static void check_fire_log_in_due_order(void)
{
    for (size_t i = 0; i < fire_count; i++) {
        ck_assert_uint_le(fire_due[i], fire_now[i]);
        if (i > 0)
            ck_assert_uint_le(fire_due[i - 1], fire_due[i]);
    }
}

/* ---- timer heap ---- */

START_TEST(test_next_due_is_uint64_max_when_no_timer_is_armed)
{
    struct dp_loop loop;
    struct tt a;
    loop_setup(&loop, 1000);
    ck_assert_uint_eq(dp_loop_next_due(&loop), UINT64_MAX);
    dp_loop_run_timers(&loop);
    ck_assert_uint_eq(fire_count, 0);

    tt_init(&a, &loop, 0);
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 5000), 0);
    ck_assert_uint_eq(dp_loop_next_due(&loop), 5000);
    dp_timer_cancel(&loop, &a.timer);
    ck_assert_uint_eq(dp_loop_next_due(&loop), UINT64_MAX);

    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 5000), 0);
    run_at(&loop, 5000);
    ck_assert_uint_eq(a.fired, 1);
    ck_assert_uint_eq(dp_loop_next_due(&loop), UINT64_MAX);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_timer_is_armed_from_set_until_it_fires_or_is_cancelled)
{
    struct dp_loop loop;
    struct tt a;
    loop_setup(&loop, 0);
    tt_init(&a, &loop, 0);
    ck_assert(!dp_timer_armed(&a.timer));
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 10), 0);
    ck_assert(dp_timer_armed(&a.timer));
    ck_assert_uint_eq(a.timer.due_us, 10);
    dp_timer_cancel(&loop, &a.timer);
    ck_assert(!dp_timer_armed(&a.timer));
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 10), 0);
    run_at(&loop, 10);
    ck_assert(!dp_timer_armed(&a.timer));
    ck_assert_uint_eq(loop.heap_len, 0);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_timer_fires_when_now_reaches_its_due_time_and_not_a_microsecond_before)
{
    struct dp_loop loop;
    struct tt a;
    loop_setup(&loop, 0);
    tt_init(&a, &loop, 0);
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 777), 0);
    run_at(&loop, 776);
    ck_assert_uint_eq(a.fired, 0);
    ck_assert(dp_timer_armed(&a.timer));
    run_at(&loop, 777);
    ck_assert_uint_eq(a.fired, 1);
    run_at(&loop, 100000);
    ck_assert_uint_eq(a.fired, 1);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_timer_armed_in_the_past_fires_on_the_next_run)
{
    struct dp_loop loop;
    struct tt a;
    loop_setup(&loop, 5000);
    tt_init(&a, &loop, 0);
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 0), 0);
    ck_assert_uint_eq(dp_loop_next_due(&loop), 0);
    dp_loop_run_timers(&loop);
    ck_assert_uint_eq(a.fired, 1);
    ck_assert_uint_eq(fire_now[0], 5000);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_timer_heap_fires_in_due_order_whatever_the_insert_order)
{
    enum { N = 500 };
    static struct tt tts[N];
    size_t order[N];
    struct dp_loop loop;
    loop_setup(&loop, 0);
    rng_seed(1);
    /* Due times from a small range, so that many timers tie. */
    for (size_t i = 0; i < N; i++) {
        tt_init(&tts[i], &loop, i);
        tts[i].timer.due_us = 1 + rng_below(64) * 10;
        order[i] = i;
    }
    shuffle(order, N);
    for (size_t i = 0; i < N; i++) {
        struct tt *x = &tts[order[i]];
        ck_assert_int_eq(dp_timer_set(&loop, &x->timer, x->timer.due_us), 0);
        check_heap(&loop);
    }
    ck_assert_uint_eq(loop.heap_len, N);
    run_at(&loop, UINT64_MAX - 1);
    ck_assert_uint_eq(fire_count, N);
    check_fire_log_in_due_order();
    for (size_t i = 0; i < N; i++) {
        ck_assert_uint_eq(tts[i].fired, 1);
        ck_assert(!dp_timer_armed(&tts[i].timer));
    }
    ck_assert_uint_eq(dp_loop_next_due(&loop), UINT64_MAX);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_timers_with_the_same_due_time_all_fire_in_the_same_run)
{
    enum { N = 100 };
    static struct tt tts[N];
    struct tt later;
    struct dp_loop loop;
    loop_setup(&loop, 0);
    for (size_t i = 0; i < N; i++) {
        tt_init(&tts[i], &loop, i);
        ck_assert_int_eq(dp_timer_set(&loop, &tts[i].timer, 300), 0);
    }
    tt_init(&later, &loop, N);
    ck_assert_int_eq(dp_timer_set(&loop, &later.timer, 301), 0);
    check_heap(&loop);
    run_at(&loop, 299);
    ck_assert_uint_eq(fire_count, 0);
    run_at(&loop, 300);
    ck_assert_uint_eq(fire_count, N);
    for (size_t i = 0; i < N; i++)
        ck_assert_uint_eq(tts[i].fired, 1);
    ck_assert_uint_eq(later.fired, 0);
    ck_assert_uint_eq(dp_loop_next_due(&loop), 301);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_advancing_clock_fires_exactly_the_timers_that_came_due)
{
    enum { N = 300 };
    static struct tt tts[N];
    struct dp_loop loop;
    loop_setup(&loop, 0);
    rng_seed(2);
    for (size_t i = 0; i < N; i++) {
        tt_init(&tts[i], &loop, i);
        ck_assert_int_eq(dp_timer_set(&loop, &tts[i].timer, 1 + rng_below(10000)), 0);
    }
    for (uint64_t now = 0; now <= 10000; now += 1 + rng_below(400)) {
        run_at(&loop, now);
        check_heap(&loop);
        uint64_t min_left = UINT64_MAX;
        for (size_t i = 0; i < N; i++) {
            if (tts[i].timer.due_us <= now) {
                ck_assert_uint_eq(tts[i].fired, 1);
            } else {
                ck_assert_uint_eq(tts[i].fired, 0);
                if (tts[i].timer.due_us < min_left)
                    min_left = tts[i].timer.due_us;
            }
        }
        ck_assert_uint_eq(dp_loop_next_due(&loop), min_left);
    }
    run_at(&loop, 10000);
    ck_assert_uint_eq(fire_count, N);
    check_fire_log_in_due_order();
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_rearming_an_armed_timer_earlier_moves_it_ahead_of_the_others)
{
    enum { N = 50 };
    static struct tt tts[N];
    struct dp_loop loop;
    loop_setup(&loop, 0);
    for (size_t i = 0; i < N; i++) {
        tt_init(&tts[i], &loop, i);
        ck_assert_int_eq(dp_timer_set(&loop, &tts[i].timer, 100 * (i + 1)), 0);
    }
    /* The last one (due 5000) now comes first. */
    ck_assert_int_eq(dp_timer_set(&loop, &tts[N - 1].timer, 50), 0);
    check_heap(&loop);
    ck_assert_uint_eq(loop.heap_len, N);
    ck_assert_uint_eq(dp_loop_next_due(&loop), 50);
    run_at(&loop, 50);
    ck_assert_uint_eq(fire_count, 1);
    ck_assert_uint_eq(fire_log[0], N - 1);
    /* One in the middle moves to just before its predecessor. */
    ck_assert_int_eq(dp_timer_set(&loop, &tts[30].timer, 2950), 0);
    check_heap(&loop);
    run_at(&loop, UINT64_MAX - 1);
    ck_assert_uint_eq(fire_count, N);
    check_fire_log_in_due_order();
    /* After the first run: ids 0..28 in slots 1..29, then 30 before 29. */
    ck_assert_uint_eq(fire_log[1 + 28], 28);
    ck_assert_uint_eq(fire_log[1 + 29], 30);
    ck_assert_uint_eq(fire_log[1 + 30], 29);
    for (size_t i = 0; i < N; i++)
        ck_assert_uint_eq(tts[i].fired, 1);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_rearming_an_armed_timer_later_moves_it_behind_the_others)
{
    enum { N = 50 };
    static struct tt tts[N];
    struct dp_loop loop;
    loop_setup(&loop, 0);
    for (size_t i = 0; i < N; i++) {
        tt_init(&tts[i], &loop, i);
        ck_assert_int_eq(dp_timer_set(&loop, &tts[i].timer, 100 * (i + 1)), 0);
    }
    /* The root (due 100) goes last, one in the middle moves back by ten. */
    ck_assert_int_eq(dp_timer_set(&loop, &tts[0].timer, 100000), 0);
    check_heap(&loop);
    ck_assert_int_eq(dp_timer_set(&loop, &tts[10].timer, 2150), 0);
    check_heap(&loop);
    ck_assert_uint_eq(loop.heap_len, N);
    ck_assert_uint_eq(dp_loop_next_due(&loop), 200);
    run_at(&loop, 99999);
    ck_assert_uint_eq(fire_count, N - 1);
    ck_assert_uint_eq(tts[0].fired, 0);
    check_fire_log_in_due_order();
    ck_assert_uint_eq(fire_log[19], 10); /* after the one due 2100, id 20 */
    ck_assert_uint_eq(fire_log[18], 20);
    run_at(&loop, 100000);
    ck_assert_uint_eq(fire_log[N - 1], 0);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_rearming_at_the_same_due_time_changes_nothing)
{
    struct dp_loop loop;
    struct tt a, b;
    loop_setup(&loop, 0);
    tt_init(&a, &loop, 0);
    tt_init(&b, &loop, 1);
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 10), 0);
    ck_assert_int_eq(dp_timer_set(&loop, &b.timer, 20), 0);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(dp_timer_set(&loop, &b.timer, 20), 0);
        ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 10), 0);
    }
    ck_assert_uint_eq(loop.heap_len, 2);
    check_heap(&loop);
    run_at(&loop, 20);
    ck_assert_uint_eq(fire_count, 2);
    ck_assert_uint_eq(fire_log[0], 0);
    ck_assert_uint_eq(fire_log[1], 1);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_cancel_in_the_middle_of_the_heap_keeps_the_rest_in_order)
{
    enum { N = 200 };
    static struct tt tts[N];
    size_t order[N];
    struct dp_loop loop;
    loop_setup(&loop, 0);
    rng_seed(3);
    for (size_t i = 0; i < N; i++) {
        tt_init(&tts[i], &loop, i);
        order[i] = i;
    }
    shuffle(order, N);
    for (size_t i = 0; i < N; i++)
        ck_assert_int_eq(dp_timer_set(&loop, &tts[order[i]].timer, 1 + rng_below(1000)), 0);
    /* Cancel from inside the heap (neither root nor last slot), then the
     * last slot, then the root: each takes a different path in cancel. */
    size_t cancelled = 0;
    for (int k = 0; k < 40; k++) {
        size_t slot = 1 + rng_below(loop.heap_len - 2);
        struct tt *x = tt_of(loop.heap[slot]);
        dp_timer_cancel(&loop, &x->timer);
        ck_assert(!dp_timer_armed(&x->timer));
        check_heap(&loop);
        cancelled++;
    }
    struct tt *last = tt_of(loop.heap[loop.heap_len - 1]);
    dp_timer_cancel(&loop, &last->timer);
    check_heap(&loop);
    struct tt *root = tt_of(loop.heap[0]);
    dp_timer_cancel(&loop, &root->timer);
    check_heap(&loop);
    cancelled += 2;
    ck_assert_uint_eq(loop.heap_len, N - cancelled);

    unsigned char was_armed[N];
    size_t armed = 0;
    for (size_t i = 0; i < N; i++) {
        was_armed[i] = (unsigned char)dp_timer_armed(&tts[i].timer);
        armed += was_armed[i];
    }
    ck_assert_uint_eq(armed, N - cancelled);
    run_at(&loop, 1000);
    ck_assert_uint_eq(fire_count, N - cancelled);
    check_fire_log_in_due_order();
    for (size_t i = 0; i < N; i++)
        ck_assert_uint_eq(tts[i].fired, was_armed[i] ? 1u : 0u);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_cancelling_an_idle_timer_changes_nothing)
{
    struct dp_loop loop;
    struct tt a, b, idle;
    loop_setup(&loop, 0);
    tt_init(&a, &loop, 0);
    tt_init(&b, &loop, 1);
    tt_init(&idle, &loop, 2);
    /* Never armed: on an empty heap, then on a heap with timers. */
    dp_timer_cancel(&loop, &idle.timer);
    ck_assert_uint_eq(loop.heap_len, 0);
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 10), 0);
    ck_assert_int_eq(dp_timer_set(&loop, &b.timer, 20), 0);
    dp_timer_cancel(&loop, &idle.timer);
    ck_assert_uint_eq(loop.heap_len, 2);
    check_heap(&loop);
    /* Cancelled twice. */
    dp_timer_cancel(&loop, &a.timer);
    dp_timer_cancel(&loop, &a.timer);
    ck_assert_uint_eq(loop.heap_len, 1);
    check_heap(&loop);
    /* Already fired. */
    run_at(&loop, 20);
    ck_assert_uint_eq(b.fired, 1);
    dp_timer_cancel(&loop, &b.timer);
    ck_assert_uint_eq(loop.heap_len, 0);
    ck_assert_uint_eq(a.fired, 0);
    ck_assert_uint_eq(idle.fired, 0);
    /* The idle timers still arm normally afterwards. */
    ck_assert_int_eq(dp_timer_set(&loop, &idle.timer, 30), 0);
    ck_assert_uint_eq(dp_loop_next_due(&loop), 30);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_a_fire_callback_can_rearm_its_own_timer)
{
    struct dp_loop loop;
    struct tt tick;
    loop_setup(&loop, 0);
    tt_init(&tick, &loop, 0);
    tick.rearm_self_after = 100;
    ck_assert_int_eq(dp_timer_set(&loop, &tick.timer, 100), 0);
    for (uint64_t now = 100; now <= 1000; now += 100) {
        run_at(&loop, now);
        /* Once per run: re-armed into the future, it waits for the next. */
        ck_assert_uint_eq(tick.fired, now / 100);
        ck_assert(dp_timer_armed(&tick.timer));
        ck_assert_uint_eq(dp_loop_next_due(&loop), now + 100);
    }
    tick.rearm_self_after = 0;
    run_at(&loop, 1100);
    ck_assert(!dp_timer_armed(&tick.timer));
    ck_assert_uint_eq(tick.fired, 11);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_a_fire_callback_can_cancel_a_timer_due_in_the_same_run)
{
    struct dp_loop loop;
    struct tt a, b, c;
    loop_setup(&loop, 0);
    tt_init(&a, &loop, 0);
    tt_init(&b, &loop, 1);
    tt_init(&c, &loop, 2);
    a.cancel_other = &b;
    ck_assert_int_eq(dp_timer_set(&loop, &c.timer, 30), 0);
    ck_assert_int_eq(dp_timer_set(&loop, &b.timer, 20), 0);
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 10), 0);
    run_at(&loop, 30);
    ck_assert_uint_eq(a.fired, 1);
    ck_assert_uint_eq(b.fired, 0);
    ck_assert_uint_eq(c.fired, 1);
    ck_assert(!dp_timer_armed(&b.timer));
    ck_assert_uint_eq(fire_count, 2);
    ck_assert_uint_eq(fire_log[0], 0);
    ck_assert_uint_eq(fire_log[1], 2);
    ck_assert_uint_eq(dp_loop_next_due(&loop), UINT64_MAX);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_a_fire_callback_can_cancel_a_timer_due_at_the_same_time)
{
    /* Ties: whichever of the two fires first cancels the other. */
    struct dp_loop loop;
    struct tt a, b;
    loop_setup(&loop, 0);
    tt_init(&a, &loop, 0);
    tt_init(&b, &loop, 1);
    a.cancel_other = &b;
    b.cancel_other = &a;
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 10), 0);
    ck_assert_int_eq(dp_timer_set(&loop, &b.timer, 10), 0);
    run_at(&loop, 10);
    ck_assert_uint_eq(fire_count, 1);
    ck_assert_uint_eq(a.fired + b.fired, 1);
    ck_assert(!dp_timer_armed(&a.timer));
    ck_assert(!dp_timer_armed(&b.timer));
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_a_fire_callback_can_arm_another_timer_due_in_the_same_run)
{
    struct dp_loop loop;
    struct tt a, now_one, later_one;
    loop_setup(&loop, 0);
    tt_init(&a, &loop, 0);
    tt_init(&now_one, &loop, 1);
    tt_init(&later_one, &loop, 2);
    a.arm_other = &now_one;
    a.arm_other_due = 40; /* due by the time of this run */
    now_one.arm_other = &later_one;
    now_one.arm_other_due = 51; /* one microsecond after it */
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 10), 0);
    run_at(&loop, 50);
    ck_assert_uint_eq(fire_count, 2);
    ck_assert_uint_eq(fire_log[0], 0);
    ck_assert_uint_eq(fire_log[1], 1);
    ck_assert_uint_eq(later_one.fired, 0);
    ck_assert(dp_timer_armed(&later_one.timer));
    ck_assert_uint_eq(dp_loop_next_due(&loop), 51);
    run_at(&loop, 51);
    ck_assert_uint_eq(later_one.fired, 1);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_a_fire_callback_can_rearm_another_armed_timer_earlier_or_later)
{
    struct dp_loop loop;
    struct tt a, pushed, pulled, bystander;
    loop_setup(&loop, 0);
    tt_init(&a, &loop, 0);
    tt_init(&pushed, &loop, 1);
    tt_init(&pulled, &loop, 2);
    tt_init(&bystander, &loop, 3);
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 10), 0);
    ck_assert_int_eq(dp_timer_set(&loop, &pushed.timer, 20), 0);
    ck_assert_int_eq(dp_timer_set(&loop, &bystander.timer, 30), 0);
    ck_assert_int_eq(dp_timer_set(&loop, &pulled.timer, 9000), 0);
    /* a pushes "pushed" (due now) out of this run, and bystander pulls
     * "pulled" (due much later) into it. */
    a.arm_other = &pushed;
    a.arm_other_due = 500;
    bystander.arm_other = &pulled;
    bystander.arm_other_due = 35;
    run_at(&loop, 100);
    ck_assert_uint_eq(fire_count, 3);
    ck_assert_uint_eq(fire_log[0], 0);
    ck_assert_uint_eq(fire_log[1], 3);
    ck_assert_uint_eq(fire_log[2], 2);
    ck_assert_uint_eq(pushed.fired, 0);
    ck_assert_uint_eq(dp_loop_next_due(&loop), 500);
    check_heap(&loop);
    ck_assert_uint_eq(loop.heap_len, 1);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_timer_heap_grows_to_thousands_and_stays_ordered)
{
    enum { N = 5000 };
    struct tt *tts = calloc(N, sizeof *tts);
    size_t *order = calloc(N, sizeof *order);
    ck_assert_ptr_nonnull(tts);
    ck_assert_ptr_nonnull(order);
    struct dp_loop loop;
    loop_setup(&loop, 0);
    rng_seed(4);
    for (size_t i = 0; i < N; i++) {
        tt_init(&tts[i], &loop, i);
        order[i] = i;
    }
    shuffle(order, N);
    for (size_t i = 0; i < N; i++) {
        ck_assert_int_eq(dp_timer_set(&loop, &tts[order[i]].timer, 1 + rng_below(1000000)), 0);
        ck_assert_uint_eq(loop.heap_len, i + 1);
    }
    ck_assert_uint_ge(loop.heap_cap, N);
    check_heap(&loop);
    /* Churn: cancel a third, re-arm a third (earlier or later), then re-arm
     * some of the cancelled ones. */
    for (size_t i = 0; i < N; i++) {
        struct tt *x = &tts[order[i]];
        if (i % 3 == 0)
            dp_timer_cancel(&loop, &x->timer);
        else if (i % 3 == 1)
            ck_assert_int_eq(dp_timer_set(&loop, &x->timer, 1 + rng_below(1000000)), 0);
    }
    check_heap(&loop);
    for (size_t i = 0; i < N; i += 6)
        ck_assert_int_eq(dp_timer_set(&loop, &tts[order[i]].timer, 1 + rng_below(1000000)), 0);
    check_heap(&loop);
    size_t armed = 0;
    for (size_t i = 0; i < N; i++)
        armed += dp_timer_armed(&tts[i].timer) ? 1 : 0;
    ck_assert_uint_eq(loop.heap_len, armed);

    /* Fire them in steps of the clock. */
    for (uint64_t now = 0; now <= 1000000; now += 50000) {
        run_at(&loop, now);
        ck_assert_uint_gt(dp_loop_next_due(&loop), now);
    }
    check_heap(&loop);
    ck_assert_uint_eq(loop.heap_len, 0);
    ck_assert_uint_eq(fire_count, armed);
    check_fire_log_in_due_order();
    for (size_t i = 0; i < N; i++)
        ck_assert_uint_le(tts[i].fired, 1);
    dp_loop_fini(&loop);
    free(order);
    free(tts);
}
END_TEST

START_TEST(test_update_time_reads_the_injected_clock)
{
    struct dp_loop loop;
    struct tt a;
    loop_setup(&loop, 1000);
    tt_init(&a, &loop, 0);
    ck_assert_int_eq(dp_timer_set(&loop, &a.timer, 1500), 0);
    fake_now_us = 1499;
    dp_loop_update_time(&loop);
    ck_assert_uint_eq(loop.now_us, 1499);
    dp_loop_run_timers(&loop);
    ck_assert_uint_eq(a.fired, 0);
    fake_now_us = 1500;
    dp_loop_update_time(&loop);
    dp_loop_run_timers(&loop);
    ck_assert_uint_eq(a.fired, 1);
    ck_assert_uint_eq(fire_now[0], 1500);
    dp_loop_fini(&loop);
}
END_TEST

/* ---- fd registry ---- */

/* The embedder's watch callback: every (fd, events) notification in order. */
#define WATCH_LOG_CAP 64
static int watch_fd[WATCH_LOG_CAP];
static unsigned watch_events[WATCH_LOG_CAP];
static size_t watch_count;
static int watch_user_ok;

static void on_watch(int fd, unsigned events, void *user)
{
    ck_assert_uint_lt(watch_count, WATCH_LOG_CAP);
    watch_user_ok = user == &watch_count;
    watch_fd[watch_count] = fd;
    watch_events[watch_count] = events;
    watch_count++;
}

/* The loop's watch hook is a field the public set_watch fills; set here
 * directly since the tests have no context. */
static void loop_watch(struct dp_loop *loop)
{
    loop->watch = on_watch;
    loop->watch_user = &watch_count;
    watch_count = 0;
    watch_user_ok = 0;
}

static void check_watch(size_t i, int fd, unsigned events)
{
    ck_assert_uint_gt(watch_count, i);
    ck_assert_int_eq(watch_fd[i], fd);
    ck_assert_uint_eq(watch_events[i], events);
}

static void io_noop(struct dp_io *io, unsigned revents)
{
    (void)io;
    (void)revents;
}

static void io_init(struct dp_io *io, int fd)
{
    io->fd = fd;
    io->want = 0;
    io->on_ready = io_noop;
}

START_TEST(test_fd_registry_finds_what_was_added_and_forgets_what_was_deleted)
{
    struct dp_loop loop;
    struct dp_io a, b;
    loop_setup(&loop, 0);
    io_init(&a, 3);
    io_init(&b, 7);
    ck_assert_ptr_null(dp_loop_lookup(&loop, 3));
    ck_assert_int_eq(dp_loop_add(&loop, &a, DOTPROXY_EV_IN), 0);
    ck_assert_int_eq(dp_loop_add(&loop, &b, 0), 0);
    ck_assert_uint_eq(loop.n_io, 2);
    ck_assert_ptr_eq(dp_loop_lookup(&loop, 3), &a);
    ck_assert_ptr_eq(dp_loop_lookup(&loop, 7), &b);
    ck_assert_ptr_null(dp_loop_lookup(&loop, 4));
    ck_assert_uint_eq(a.want, DOTPROXY_EV_IN);
    ck_assert_uint_eq(b.want, 0);
    dp_loop_del(&loop, &a);
    ck_assert_ptr_null(dp_loop_lookup(&loop, 3));
    ck_assert_ptr_eq(dp_loop_lookup(&loop, 7), &b);
    ck_assert_uint_eq(loop.n_io, 1);
    ck_assert_uint_eq(a.want, 0);
    /* The fd number is free again for another owner. */
    struct dp_io c;
    io_init(&c, 3);
    ck_assert_int_eq(dp_loop_add(&loop, &c, DOTPROXY_EV_OUT), 0);
    ck_assert_ptr_eq(dp_loop_lookup(&loop, 3), &c);
    ck_assert_uint_eq(loop.n_io, 2);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_fd_registry_lookup_outside_the_table_finds_nothing)
{
    struct dp_loop loop;
    struct dp_io a;
    loop_setup(&loop, 0);
    ck_assert_ptr_null(dp_loop_lookup(&loop, 0));
    ck_assert_ptr_null(dp_loop_lookup(&loop, -1));
    io_init(&a, 5);
    ck_assert_int_eq(dp_loop_add(&loop, &a, DOTPROXY_EV_IN), 0);
    ck_assert_ptr_null(dp_loop_lookup(&loop, -1));
    ck_assert_ptr_null(dp_loop_lookup(&loop, (int)loop.by_fd_cap));
    ck_assert_ptr_null(dp_loop_lookup(&loop, 1 << 30));
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_fd_registry_rejects_a_negative_fd)
{
    struct dp_loop loop;
    struct dp_io a;
    loop_setup(&loop, 0);
    loop_watch(&loop);
    io_init(&a, -1);
    ck_assert_int_eq(dp_loop_add(&loop, &a, DOTPROXY_EV_IN), DOTPROXY_EINVAL);
    ck_assert_uint_eq(loop.n_io, 0);
    ck_assert_uint_eq(watch_count, 0);
    /* Deleting it is harmless too. */
    dp_loop_del(&loop, &a);
    ck_assert_uint_eq(loop.n_io, 0);
    ck_assert_uint_eq(watch_count, 0);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_fd_registry_grows_for_high_fd_numbers_and_keeps_earlier_entries)
{
    enum { N = 40 };
    struct dp_io ios[N];
    struct dp_loop loop;
    loop_setup(&loop, 0);
    /* fds 0, 97, 194, ... 3783: several doublings of the table. */
    for (int i = 0; i < N; i++) {
        io_init(&ios[i], i * 97);
        ck_assert_int_eq(dp_loop_add(&loop, &ios[i], DOTPROXY_EV_IN), 0);
        ck_assert_uint_gt(loop.by_fd_cap, (size_t)(i * 97));
        for (int j = 0; j <= i; j++)
            ck_assert_ptr_eq(dp_loop_lookup(&loop, j * 97), &ios[j]);
    }
    ck_assert_uint_eq(loop.n_io, N);
    /* Slots between them stay empty. */
    for (int fd = 0; fd < N * 97; fd++)
        if (fd % 97 != 0)
            ck_assert_ptr_null(dp_loop_lookup(&loop, fd));
    for (int i = 0; i < N; i += 2)
        dp_loop_del(&loop, &ios[i]);
    ck_assert_uint_eq(loop.n_io, N / 2);
    for (int i = 0; i < N; i++)
        ck_assert_ptr_eq(dp_loop_lookup(&loop, i * 97), i % 2 ? &ios[i] : NULL);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_watch_callback_hears_every_change_of_interest)
{
    struct dp_loop loop;
    struct dp_io a, quiet;
    loop_setup(&loop, 0);
    loop_watch(&loop);
    io_init(&a, 9);
    io_init(&quiet, 11);

    /* Added with interest: announced. Added without: not. */
    ck_assert_int_eq(dp_loop_add(&loop, &a, DOTPROXY_EV_IN), 0);
    ck_assert_int_eq(dp_loop_add(&loop, &quiet, 0), 0);
    ck_assert_uint_eq(watch_count, 1);
    check_watch(0, 9, DOTPROXY_EV_IN);
    ck_assert(watch_user_ok);

    /* Unchanged interest: nothing to tell. */
    dp_loop_want(&loop, &a, DOTPROXY_EV_IN);
    ck_assert_uint_eq(watch_count, 1);

    dp_loop_want(&loop, &a, DOTPROXY_EV_IN | DOTPROXY_EV_OUT);
    check_watch(1, 9, DOTPROXY_EV_IN | DOTPROXY_EV_OUT);
    dp_loop_want(&loop, &a, DOTPROXY_EV_OUT);
    check_watch(2, 9, DOTPROXY_EV_OUT);
    /* No interest is told as 0 (forget the fd), though the loop keeps it. */
    dp_loop_want(&loop, &a, 0);
    check_watch(3, 9, 0);
    ck_assert_ptr_eq(dp_loop_lookup(&loop, 9), &a);
    dp_loop_want(&loop, &a, DOTPROXY_EV_IN);
    check_watch(4, 9, DOTPROXY_EV_IN);
    ck_assert_uint_eq(watch_count, 5);

    /* Deleting a watched fd tells 0; deleting an unwatched one tells nothing. */
    dp_loop_del(&loop, &a);
    check_watch(5, 9, 0);
    dp_loop_del(&loop, &quiet);
    ck_assert_uint_eq(watch_count, 6);
    ck_assert_uint_eq(loop.n_io, 0);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_deleting_an_io_the_loop_does_not_hold_changes_nothing)
{
    struct dp_loop loop;
    struct dp_io a, impostor, stranger, far;
    loop_setup(&loop, 0);
    loop_watch(&loop);
    io_init(&a, 4);
    ck_assert_int_eq(dp_loop_add(&loop, &a, DOTPROXY_EV_IN), 0);
    ck_assert_uint_eq(watch_count, 1);

    /* Same fd number, another owner: a stale handle must not evict a. */
    io_init(&impostor, 4);
    impostor.want = DOTPROXY_EV_IN;
    dp_loop_del(&loop, &impostor);
    /* An fd inside the table that nobody holds, and one beyond it. */
    io_init(&stranger, 5);
    stranger.want = DOTPROXY_EV_OUT;
    dp_loop_del(&loop, &stranger);
    io_init(&far, 100000);
    far.want = DOTPROXY_EV_OUT;
    dp_loop_del(&loop, &far);

    ck_assert_uint_eq(watch_count, 1);
    ck_assert_uint_eq(loop.n_io, 1);
    ck_assert_ptr_eq(dp_loop_lookup(&loop, 4), &a);
    /* Deleting twice: the second time is a no-op. */
    dp_loop_del(&loop, &a);
    dp_loop_del(&loop, &a);
    ck_assert_uint_eq(watch_count, 2);
    ck_assert_uint_eq(loop.n_io, 0);
    dp_loop_fini(&loop);
}
END_TEST

START_TEST(test_registry_without_a_watch_callback_still_tracks_interest)
{
    struct dp_loop loop;
    struct dp_io a;
    loop_setup(&loop, 0);
    ck_assert(loop.watch == NULL);
    io_init(&a, 2);
    ck_assert_int_eq(dp_loop_add(&loop, &a, DOTPROXY_EV_IN), 0);
    dp_loop_want(&loop, &a, DOTPROXY_EV_OUT);
    ck_assert_uint_eq(a.want, DOTPROXY_EV_OUT);
    ck_assert_uint_eq(dp_loop_lookup(&loop, 2)->want, DOTPROXY_EV_OUT);
    dp_loop_del(&loop, &a);
    ck_assert_ptr_null(dp_loop_lookup(&loop, 2));
    dp_loop_fini(&loop);
}
END_TEST

static Suite *loop_suite(void)
{
    Suite *s = suite_create("loop");
    TCase *tc = tcase_create("timers");
    tcase_add_test(tc, test_next_due_is_uint64_max_when_no_timer_is_armed);
    tcase_add_test(tc, test_timer_is_armed_from_set_until_it_fires_or_is_cancelled);
    tcase_add_test(tc, test_timer_fires_when_now_reaches_its_due_time_and_not_a_microsecond_before);
    tcase_add_test(tc, test_timer_armed_in_the_past_fires_on_the_next_run);
    tcase_add_test(tc, test_timer_heap_fires_in_due_order_whatever_the_insert_order);
    tcase_add_test(tc, test_timers_with_the_same_due_time_all_fire_in_the_same_run);
    tcase_add_test(tc, test_advancing_clock_fires_exactly_the_timers_that_came_due);
    tcase_add_test(tc, test_rearming_an_armed_timer_earlier_moves_it_ahead_of_the_others);
    tcase_add_test(tc, test_rearming_an_armed_timer_later_moves_it_behind_the_others);
    tcase_add_test(tc, test_rearming_at_the_same_due_time_changes_nothing);
    tcase_add_test(tc, test_cancel_in_the_middle_of_the_heap_keeps_the_rest_in_order);
    tcase_add_test(tc, test_cancelling_an_idle_timer_changes_nothing);
    tcase_add_test(tc, test_a_fire_callback_can_rearm_its_own_timer);
    tcase_add_test(tc, test_a_fire_callback_can_cancel_a_timer_due_in_the_same_run);
    tcase_add_test(tc, test_a_fire_callback_can_cancel_a_timer_due_at_the_same_time);
    tcase_add_test(tc, test_a_fire_callback_can_arm_another_timer_due_in_the_same_run);
    tcase_add_test(tc, test_a_fire_callback_can_rearm_another_armed_timer_earlier_or_later);
    tcase_add_test(tc, test_timer_heap_grows_to_thousands_and_stays_ordered);
    tcase_add_test(tc, test_update_time_reads_the_injected_clock);
    suite_add_tcase(s, tc);

    TCase *fds = tcase_create("fds");
    tcase_add_test(fds, test_fd_registry_finds_what_was_added_and_forgets_what_was_deleted);
    tcase_add_test(fds, test_fd_registry_lookup_outside_the_table_finds_nothing);
    tcase_add_test(fds, test_fd_registry_rejects_a_negative_fd);
    tcase_add_test(fds, test_fd_registry_grows_for_high_fd_numbers_and_keeps_earlier_entries);
    tcase_add_test(fds, test_watch_callback_hears_every_change_of_interest);
    tcase_add_test(fds, test_deleting_an_io_the_loop_does_not_hold_changes_nothing);
    tcase_add_test(fds, test_registry_without_a_watch_callback_still_tracks_interest);
    suite_add_tcase(s, fds);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(loop_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
