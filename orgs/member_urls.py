from django.urls import path

from . import member_views as views

urlpatterns = [
    path("", views.member_list, name="members"),
    path("invite/", views.member_invite, name="members-invite"),
    path("matrix/", views.access_matrix, name="members-matrix"),
    path("transfer/", views.ownership_transfer, name="members-transfer"),
    path("invitations/<int:pk>/resend/", views.invitation_resend, name="invitation-resend"),
    path("invitations/<int:pk>/revoke/", views.invitation_revoke, name="invitation-revoke"),
    path("invitations/<int:pk>/confirm/", views.invitation_confirm, name="invitation-confirm"),
    path("grants/<int:pk>/tier/", views.grant_tier, name="members-tier"),
    path("<int:user_id>/remove/", views.member_remove, name="members-remove"),
]
