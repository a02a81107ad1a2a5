"""`kanboard-sdk` against `groupd serve --http`.

Run by scripts/kanboard-clients.sh in a virtual environment holding requirements-kanboard-sdk.txt.
"""

import unittest

from kanboard import (
    Group,
    KanboardAPIError,
    KanboardAuthError,
    KanboardClient,
    KanboardNotFoundError,
)

from common import HAS_TOKEN, TOKEN, URL, main, readme_snippet, unique


def client(token=TOKEN, **kwargs):
    return KanboardClient(URL, token=token, timeout=10.0, **kwargs)


class Sdk(unittest.TestCase):
    def setUp(self):
        self.client = client()
        self.groups = self.client.groups

    def tearDown(self):
        self.client.close()

    def test_create_update_get_get_all_remove(self):
        groups = self.groups
        name = unique("Operations")
        group_id = groups.create_group(name, external_id="ops")
        self.assertIsInstance(group_id, int)
        self.assertEqual(groups.get_group(group_id), Group(group_id, name, "ops"))

        self.assertIs(groups.update_group(group_id, name=name + " renamed"), True)
        self.assertIs(groups.update_group(group_id, external_id="ops-2"), True)
        expected = Group(group_id, name + " renamed", "ops-2")
        self.assertEqual(groups.get_group(group_id), expected)
        self.assertIn(expected, groups.get_all_groups())

        self.assertIs(groups.remove_group(group_id), True)
        with self.assertRaises(KanboardNotFoundError):
            groups.get_group(group_id)
        self.assertNotIn(expected, groups.get_all_groups())
        self.assertIs(groups.remove_group(group_id), False)

    def test_failures_raise_as_the_sdk_documents(self):
        groups = self.groups
        name = unique("taken")
        group_id = groups.create_group(name)
        with self.assertRaisesRegex(KanboardAPIError, "Failed to create group"):
            groups.create_group(name)
        with self.assertRaisesRegex(KanboardAPIError, "Failed to update group"):
            groups.update_group(999999, name=unique("x"))
        groups.remove_group(group_id)

    def test_jsonrpc_errors_reach_the_client_with_their_code(self):
        with self.assertRaises(KanboardAPIError) as raised:
            self.groups.create_group(42)
        self.assertEqual((raised.exception.code, raised.exception.message), (-32602, "Invalid params"))
        with self.assertRaises(KanboardAPIError) as raised:
            self.client.call("createGrop", name="typo")
        self.assertEqual(raised.exception.code, -32601)

    def test_batch(self):
        first, second = unique("batch a"), unique("batch b")
        a, b, listed = self.client.batch(
            [
                ("createGroup", {"name": first}),
                ("createGroup", {"name": second, "external_id": "b"}),
                ("getAllGroups", {}),
            ]
        )
        self.assertIn({"id": str(a), "external_id": "", "name": first}, listed)
        self.assertIn({"id": str(b), "external_id": "b", "name": second}, listed)
        self.assertEqual(
            self.client.batch([("removeGroup", {"group_id": a}), ("removeGroup", {"group_id": b})]),
            [True, True],
        )

    def test_many_calls_on_one_kept_alive_connection(self):
        name = unique("keep-alive")
        group_id = self.groups.create_group(name)
        for _ in range(50):
            self.assertEqual(self.groups.get_group(group_id).name, name)
        self.groups.remove_group(group_id)

    def test_credentials(self):
        name = unique("credentials")
        wrong = [
            client(token=TOKEN + "x"),
            client(token=""),
            client(auth_mode="user", username="admin", password=TOKEN),
        ]
        for case, sdk in enumerate(wrong):
            with self.subTest(case=case):
                if HAS_TOKEN:
                    with self.assertRaises(KanboardAuthError) as raised:
                        sdk.groups.create_group(name)
                    self.assertEqual(raised.exception.http_status, 401)
                else:
                    # Without a token the server asks for no credentials at all.
                    self.assertIsInstance(sdk.groups.get_all_groups(), list)
            sdk.close()
        if HAS_TOKEN:
            self.assertNotIn(name, [g.name for g in self.groups.get_all_groups()])

    def test_readme_snippet(self):
        exec(readme_snippet("KanboardClient("), {})


if __name__ == "__main__":
    main()
