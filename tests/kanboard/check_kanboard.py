"""The official Python client, `kanboard`, against `groupd serve --http`.

Run by scripts/kanboard-clients.sh in a virtual environment holding requirements-kanboard.txt.
"""

import unittest

import kanboard

from common import HAS_TOKEN, TOKEN, URL, main, readme_snippet, unique


def client(password=TOKEN, username="jsonrpc"):
    return kanboard.Client(url=URL, username=username, password=password)


class OfficialClient(unittest.TestCase):
    def setUp(self):
        self.kb = client()

    def tearDown(self):
        self.kb.close()

    def test_create_update_get_get_all_remove(self):
        kb = self.kb
        name = unique("Operations")
        group_id = kb.create_group(name=name, external_id="ops")
        self.assertIsInstance(group_id, int)
        self.assertEqual(
            kb.get_group(group_id=group_id),
            {"id": str(group_id), "external_id": "ops", "name": name},
        )

        self.assertIs(kb.update_group(group_id=group_id, name=name + " renamed"), True)
        self.assertIs(kb.update_group(group_id=group_id, external_id="ops-2"), True)
        expected = {"id": str(group_id), "external_id": "ops-2", "name": name + " renamed"}
        self.assertEqual(kb.get_group(group_id=group_id), expected)
        self.assertIn(expected, kb.get_all_groups())

        self.assertIs(kb.remove_group(group_id=group_id), True)
        self.assertIs(kb.get_group(group_id=group_id), False)
        self.assertNotIn(expected, kb.get_all_groups())
        self.assertIs(kb.remove_group(group_id=group_id), False)

    def test_get_all_groups_is_sorted_by_name(self):
        kb = self.kb
        names = [unique("zeta"), unique("alpha"), unique("Mu")]
        ids = [kb.create_group(name=n) for n in names]
        listed = [g["name"] for g in kb.get_all_groups() if g["name"] in names]
        self.assertEqual(listed, sorted(names))
        for group_id in ids:
            kb.remove_group(group_id=group_id)

    def test_failures_are_false_as_documented(self):
        kb = self.kb
        name = unique("taken")
        group_id = kb.create_group(name=name)
        self.assertIs(kb.create_group(name=name), False)
        self.assertIs(kb.create_group(name="   "), False)
        self.assertIs(kb.update_group(group_id=999999, name=unique("x")), False)
        kb.remove_group(group_id=group_id)

    def test_jsonrpc_errors_reach_the_client(self):
        with self.assertRaisesRegex(kanboard.ClientError, "^Invalid params$"):
            self.kb.create_group(name=42)
        with self.assertRaisesRegex(kanboard.ClientError, "^Method not found$"):
            self.kb.create_grop(name="typo")

    def test_credentials(self):
        name = unique("credentials")
        wrong = [client(password=TOKEN + "x"), client(password=""), client(username="admin")]
        for case, kb in enumerate(wrong):
            with self.subTest(case=case):
                if HAS_TOKEN:
                    with self.assertRaisesRegex(kanboard.ClientError, "HTTP Error 401"):
                        kb.create_group(name=name)
                else:
                    # Without a token the server asks for no credentials at all.
                    self.assertIsInstance(kb.get_all_groups(), list)
            kb.close()
        if HAS_TOKEN:
            self.assertNotIn(name, [g["name"] for g in self.kb.get_all_groups()])

    def test_readme_snippet(self):
        exec(readme_snippet("kanboard.Client("), {})


if __name__ == "__main__":
    main()
