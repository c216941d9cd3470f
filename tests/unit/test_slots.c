/* SPDX-License-Identifier: MIT */
/* Unit tests of lib/slots.h: the in-flight table of an upstream connection
 * (wire IDs: slot index in the low bits, a per-slot generation above), for
 * every table size the configuration allows, not only powers of two. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "dotproxy/error.h"
#include "slots.h"

/* Stand-ins for query records: only their addresses matter here. */
static char queries[32768];
#define Q(i) ((struct dp_query *)(void *)&queries[i])

static void init(struct dp_slots *s, unsigned n)
{
    ck_assert_int_eq(dp_slots_init(s, n), 0);
    ck_assert_uint_eq(s->n_free, n);
    ck_assert_uint_eq(dp_slots_live(s), 0);
}

START_TEST(test_slots_give_every_query_a_distinct_id_that_leads_back_to_it)
{
    /* Sizes around powers of two: max_inflight is any of 1..32768. */
    static const unsigned sizes[] = {1, 2, 3, 8, 9, 1000, 1024, 1025, 32767, 32768};
    static uint8_t seen[65536];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        unsigned n = sizes[k];
        struct dp_slots s;
        init(&s, n);
        memset(seen, 0, sizeof seen);
        uint16_t *wire = malloc(n * sizeof *wire);
        ck_assert_ptr_nonnull(wire);
        for (unsigned i = 0; i < n; i++) {
            wire[i] = dp_slots_take(&s, Q(i));
            ck_assert_msg(!seen[wire[i]], "n=%u: wire ID %u given twice", n, wire[i]);
            seen[wire[i]] = 1;
        }
        ck_assert_uint_eq(s.n_free, 0);
        ck_assert_uint_eq(dp_slots_live(&s), n);
        for (unsigned i = 0; i < n; i++) {
            unsigned idx = n;
            ck_assert_int_eq(dp_slots_match(&s, wire[i], &idx), DP_SLOT_LIVE);
            ck_assert_ptr_eq(s.occupant[idx], Q(i));
        }
        free(wire);
        dp_slots_fini(&s);
    }
}
END_TEST

START_TEST(test_slots_hand_out_low_slots_first)
{
    struct dp_slots s;
    init(&s, 1000);
    for (unsigned i = 0; i < 3; i++) {
        uint16_t w = dp_slots_take(&s, Q(i));
        ck_assert_uint_eq(dp_slots_index(&s, w), i);
    }
    dp_slots_fini(&s);
}
END_TEST

START_TEST(test_slots_reuse_a_freed_slot_under_a_new_id_and_forget_the_old_one)
{
    struct dp_slots s;
    init(&s, 4);
    uint16_t w1 = dp_slots_take(&s, Q(1));
    unsigned idx = 99;
    ck_assert_int_eq(dp_slots_match(&s, w1, &idx), DP_SLOT_LIVE);
    dp_slots_release(&s, idx);
    uint16_t w2 = dp_slots_take(&s, Q(2));
    ck_assert_uint_eq(dp_slots_index(&s, w2), dp_slots_index(&s, w1)); /* same slot */
    ck_assert_uint_ne(w2, w1);
    ck_assert_int_eq(dp_slots_match(&s, w1, &idx), DP_SLOT_UNKNOWN); /* a stale answer */
    ck_assert_int_eq(dp_slots_match(&s, w2, &idx), DP_SLOT_LIVE);
    ck_assert_ptr_eq(s.occupant[idx], Q(2));
    dp_slots_fini(&s);
}
END_TEST

START_TEST(test_slots_keep_a_forgotten_querys_id_reserved_until_its_answer)
{
    struct dp_slots s;
    init(&s, 2);
    uint16_t w = dp_slots_take(&s, Q(0));
    unsigned idx = 99;
    ck_assert_int_eq(dp_slots_match(&s, w, &idx), DP_SLOT_LIVE);
    dp_slots_kill(&s, idx);
    ck_assert_uint_eq(dp_slots_live(&s), 0);
    ck_assert_uint_eq(s.used, 1);
    ck_assert_uint_eq(s.n_free, 1); /* the slot is not given out again */
    uint16_t other = dp_slots_take(&s, Q(1));
    ck_assert_uint_ne(dp_slots_index(&s, other), idx);
    ck_assert_int_eq(dp_slots_match(&s, w, &idx), DP_SLOT_DEAD); /* the late answer */
    dp_slots_release(&s, idx);
    ck_assert_uint_eq(s.n_dead, 0);
    ck_assert_uint_eq(s.n_free, 1);
    ck_assert_int_eq(dp_slots_match(&s, w, &idx), DP_SLOT_UNKNOWN);
    dp_slots_fini(&s);
}
END_TEST

START_TEST(test_slots_reject_ids_that_name_no_slot)
{
    struct dp_slots s;
    init(&s, 1000); /* 10 index bits: indices 1000..1023 name no slot */
    unsigned idx = 12345;
    ck_assert_int_eq(dp_slots_match(&s, (uint16_t)((1u << 10) | 1000u), &idx), DP_SLOT_UNKNOWN);
    ck_assert_int_eq(dp_slots_match(&s, 0xffff, &idx), DP_SLOT_UNKNOWN);
    ck_assert_int_eq(dp_slots_match(&s, 0, &idx), DP_SLOT_UNKNOWN); /* free slot 0 */
    ck_assert_uint_eq(idx, 12345);                                  /* untouched */
    dp_slots_fini(&s);
}
END_TEST

START_TEST(test_slots_generations_keep_the_last_id_apart_from_the_one_before)
{
    /* With 32768 slots only one generation bit is left: consecutive
     * occupants of a slot still differ. */
    static const unsigned sizes[] = {1, 5, 32768};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        struct dp_slots s;
        init(&s, sizes[k]);
        uint16_t prev = dp_slots_take(&s, Q(0));
        unsigned idx = 0;
        for (int round = 0; round < 100000; round++) {
            ck_assert_int_eq(dp_slots_match(&s, prev, &idx), DP_SLOT_LIVE);
            dp_slots_release(&s, idx);
            uint16_t next = dp_slots_take(&s, Q(0));
            ck_assert_uint_ne(next, prev);
            ck_assert_int_eq(dp_slots_match(&s, prev, &idx), DP_SLOT_UNKNOWN);
            prev = next;
        }
        dp_slots_fini(&s);
    }
}
END_TEST

START_TEST(test_slots_refuse_a_size_the_ids_cannot_hold)
{
    struct dp_slots s;
    ck_assert_int_eq(dp_slots_init(&s, 0), DOTPROXY_EINVAL);
    dp_slots_fini(&s);
    ck_assert_int_eq(dp_slots_init(&s, 32769), DOTPROXY_EINVAL);
    dp_slots_fini(&s);
}
END_TEST

static Suite *slots_suite(void)
{
    Suite *s = suite_create("slots");
    TCase *tc = tcase_create("slots");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_slots_give_every_query_a_distinct_id_that_leads_back_to_it);
    tcase_add_test(tc, test_slots_hand_out_low_slots_first);
    tcase_add_test(tc, test_slots_reuse_a_freed_slot_under_a_new_id_and_forget_the_old_one);
    tcase_add_test(tc, test_slots_keep_a_forgotten_querys_id_reserved_until_its_answer);
    tcase_add_test(tc, test_slots_reject_ids_that_name_no_slot);
    tcase_add_test(tc, test_slots_generations_keep_the_last_id_apart_from_the_one_before);
    tcase_add_test(tc, test_slots_refuse_a_size_the_ids_cannot_hold);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(slots_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
