"""Today's setup becomes the new one with nothing lost: the Responders group becomes the
team `response` (it sees every incident, as responders did) with the same members, a
category `general` owned by it, and every existing incident gets that category and team.
A fresh install starts with the same defaults. Rolling back restores the group and its
members from the team."""

from django.db import migrations

RESPONDERS_GROUP = "Responders"  # frozen copies: migrations must not import the models
TEAM, CATEGORY = "response", "general"


def forward(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Team = apps.get_model("incidents", "Team")
    Category = apps.get_model("incidents", "Category")
    Incident = apps.get_model("incidents", "Incident")
    team, _ = Team.objects.get_or_create(
        slug=TEAM,
        defaults={
            "name": "Response team",
            "description": "Sees and works every incident (the former Responders group).",
            "sees_all": True,
        },
    )
    category, _ = Category.objects.get_or_create(
        slug=CATEGORY,
        defaults={"name": "General", "description": "Anything that fits no other category.", "team": team, "position": 0},
    )
    group = Group.objects.filter(name=RESPONDERS_GROUP).first()
    if group is not None:
        team.members.add(*group.user_set.all())
        group.delete()
    Incident.objects.filter(team__isnull=True).update(team=team)
    Incident.objects.filter(category__isnull=True).update(category=category)


def backward(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Team = apps.get_model("incidents", "Team")
    group, _ = Group.objects.get_or_create(name=RESPONDERS_GROUP)
    team = Team.objects.filter(slug=TEAM).first()
    if team is not None:
        group.user_set.add(*team.members.all())


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0010_teams_categories_assignee"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(forward, backward)]
