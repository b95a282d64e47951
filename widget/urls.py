from django.urls import path

from widget import api, views

app_name = "widget"

urlpatterns = [
    path("widget/embed.js", views.embed_js, name="embed-js"),
    path("widget/<str:site_key>/", views.widget_page, name="page"),
    path("demo/", views.demo, name="demo"),
    path("api/widget/sessions/", api.SessionStartView.as_view(), name="session-start"),
    path(
        "api/widget/sites/<str:site_key>/",
        api.SiteAvailabilityView.as_view(),
        name="site-availability",
    ),
    path("api/widget/openings/", api.OpeningView.as_view(), name="openings"),
    # str, not uuid: a malformed id then gets the API's JSON 404, not Django's HTML one.
    path(
        "api/widget/sessions/<str:session_id>/",
        api.SessionTranscriptView.as_view(),
        name="session-detail",
    ),
    path(
        "api/widget/sessions/<str:session_id>/messages/",
        api.MessagePostView.as_view(),
        name="session-messages",
    ),
    path(
        "api/widget/sessions/<str:session_id>/typing/",
        api.VisitorTypingView.as_view(),
        name="session-typing",
    ),
]
