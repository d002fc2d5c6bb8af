<?php
/**
 * Settings → FormRelay: the sidecar's address and secret, which forms are
 * delivered, each form's payload template, priority and partner, and the seal
 * public key (FormRelay_Admin_Seal).
 *
 * Saved through options.php with the Settings API (its nonce and the
 * manage_options capability); FormRelay_Settings::sanitize() validates. The
 * shared secret is never printed: the page says whether one is set.
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The wp-admin settings page.
 */
final class FormRelay_Admin {

	const PAGE       = 'formrelay-bridge';
	const CAPABILITY = 'manage_options';
	const MAX_FORMS  = 500;

	/**
	 * Hook the page into wp-admin.
	 *
	 * @return void
	 */
	public static function register() {
		add_action( 'admin_menu', array( __CLASS__, 'add_page' ) );
		add_action( 'admin_init', array( __CLASS__, 'add_fields' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( FORMRELAY_BRIDGE_FILE ), array( __CLASS__, 'action_links' ) );
	}

	/**
	 * Settings → FormRelay.
	 *
	 * @return void
	 */
	public static function add_page() {
		add_options_page(
			__( 'FormRelay', 'formrelay-bridge' ),
			__( 'FormRelay', 'formrelay-bridge' ),
			self::CAPABILITY,
			self::PAGE,
			array( __CLASS__, 'render_page' )
		);
	}

	/**
	 * A "Settings" link on the Plugins screen.
	 *
	 * @param string[] $links The plugin's action links.
	 * @return string[]
	 */
	public static function action_links( $links ) {
		$url = admin_url( 'options-general.php?page=' . self::PAGE );
		array_unshift( $links, '<a href="' . esc_url( $url ) . '">' . esc_html__( 'Settings', 'formrelay-bridge' ) . '</a>' );
		return $links;
	}

	/**
	 * The page's sections and fields.
	 *
	 * @return void
	 */
	public static function add_fields() {
		add_settings_section( 'formrelay_sidecar', __( 'Sidecar', 'formrelay-bridge' ), array( __CLASS__, 'render_sidecar_intro' ), self::PAGE );
		add_settings_field(
			'formrelay_sidecar_url',
			__( 'Sidecar URL', 'formrelay-bridge' ),
			array( __CLASS__, 'render_url_field' ),
			self::PAGE,
			'formrelay_sidecar',
			array( 'label_for' => 'formrelay_sidecar_url' )
		);
		add_settings_field(
			'formrelay_shared_secret',
			__( 'Shared secret', 'formrelay-bridge' ),
			array( __CLASS__, 'render_secret_field' ),
			self::PAGE,
			'formrelay_sidecar',
			array( 'label_for' => 'formrelay_shared_secret' )
		);
		add_settings_section( 'formrelay_forms', __( 'Forms', 'formrelay-bridge' ), array( __CLASS__, 'render_forms_intro' ), self::PAGE );
		add_settings_field( 'formrelay_forms', __( 'Delivered forms', 'formrelay-bridge' ), array( __CLASS__, 'render_forms_field' ), self::PAGE, 'formrelay_forms' );
		FormRelay_Admin_Seal::add_fields( self::PAGE );
		add_settings_section( 'formrelay_data', __( 'Data', 'formrelay-bridge' ), '__return_false', self::PAGE );
		add_settings_field( 'formrelay_uninstall', __( 'On uninstall', 'formrelay-bridge' ), array( __CLASS__, 'render_uninstall_field' ), self::PAGE, 'formrelay_data' );
	}

	/**
	 * The page (Settings API form posting to options.php).
	 *
	 * @return void
	 */
	public static function render_page() {
		if ( ! current_user_can( self::CAPABILITY ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage FormRelay.', 'formrelay-bridge' ), '', array( 'response' => 403 ) );
		}
		echo '<div class="wrap formrelay-settings">';
		echo '<h1>' . esc_html( get_admin_page_title() ) . '</h1>';
		echo '<form method="post" action="' . esc_url( admin_url( 'options.php' ) ) . '">';
		settings_fields( FormRelay_Settings::GROUP );
		do_settings_sections( self::PAGE );
		submit_button();
		echo '</form></div>';
	}

	/**
	 * The sidecar section's introduction: whether notifies are sent.
	 *
	 * @return void
	 */
	public static function render_sidecar_intro() {
		$ready = '' !== FormRelay_Settings::sidecar_url() && '' !== FormRelay_Settings::shared_secret();
		echo '<p>' . esc_html__( 'Each submission is queued in the database; the bridge then wakes the FormRelay sidecar with a signed request to {URL}/v1/notify.', 'formrelay-bridge' ) . '</p>';
		echo '<p class="formrelay-notify-status">' . ( $ready
			? esc_html__( 'Notifications are on.', 'formrelay-bridge' )
			: esc_html__( 'Notifications are off until both a URL and a secret are set; submissions are still queued, and the sidecar finds them by itself, only later.', 'formrelay-bridge' ) ) . '</p>';
	}

	/**
	 * The sidecar URL input (disabled when wp-config.php sets it).
	 *
	 * @return void
	 */
	public static function render_url_field() {
		$from_constant = FormRelay_Settings::url_from_constant();
		printf(
			'<input type="url" id="formrelay_sidecar_url" name="%1$s" value="%2$s" class="regular-text code" placeholder="http://127.0.0.1:8787"%3$s />',
			esc_attr( FormRelay_Settings::OPTION . '[sidecar_url]' ),
			esc_attr( $from_constant ? FormRelay_Settings::sidecar_url() : FormRelay_Settings::get()['sidecar_url'] ),
			disabled( $from_constant, true, false )
		);
		if ( $from_constant ) {
			self::constant_note( FormRelay_Settings::URL_CONSTANT );
		}
	}

	/**
	 * The shared secret input: always empty; says whether a secret is set.
	 *
	 * @return void
	 */
	public static function render_secret_field() {
		if ( FormRelay_Settings::secret_from_constant() ) {
			echo '<input type="password" id="formrelay_shared_secret" value="" class="regular-text" disabled="disabled" />';
			self::constant_note( FormRelay_Settings::SECRET_CONSTANT );
			return;
		}
		$is_set = '' !== FormRelay_Settings::stored_secret();
		printf(
			'<input type="password" id="formrelay_shared_secret" name="%1$s" value="" class="regular-text" autocomplete="new-password" />',
			esc_attr( FormRelay_Settings::OPTION . '[shared_secret]' )
		);
		echo '<p class="description formrelay-secret-status">' . ( $is_set
			? esc_html__( 'A secret is set. Leave the field empty to keep it, or type a new one to replace it.', 'formrelay-bridge' )
			: esc_html__( 'No secret is set.', 'formrelay-bridge' ) ) . ' '
			. esc_html(
				sprintf(
					/* translators: %d: minimum length. */
					__( 'The same value as the sidecar\'s FORMRELAY_SHARED_SECRET, at least %d characters.', 'formrelay-bridge' ),
					FormRelay_Settings::MIN_SECRET_BYTES
				)
			) . '</p>';
		if ( $is_set ) {
			printf(
				'<p><label><input type="checkbox" name="%1$s" value="1" /> %2$s</label></p>',
				esc_attr( FormRelay_Settings::OPTION . '[clear_shared_secret]' ),
				esc_html__( 'Remove the stored secret', 'formrelay-bridge' )
			);
		}
	}

	/**
	 * The forms section's introduction.
	 *
	 * @return void
	 */
	public static function render_forms_intro() {
		echo '<p>' . esc_html__( 'Which WPForms forms are delivered, and for each its payload template (a file in the sidecar\'s templates/payloads/, empty for the sidecar\'s choice), its priority (0 to 100, lower is delivered first) and its partner (one of the sidecar\'s partners; a job keeps the partner it was captured for).', 'formrelay-bridge' ) . '</p>';
	}

	/**
	 * All-or-selected, then one row per published form.
	 *
	 * @return void
	 */
	public static function render_forms_field() {
		$settings = FormRelay_Settings::get();
		$all      = 'all' === $settings['forms'];
		$name     = FormRelay_Settings::OPTION;
		echo '<fieldset><legend class="screen-reader-text">' . esc_html__( 'Delivered forms', 'formrelay-bridge' ) . '</legend>';
		printf(
			'<label><input type="radio" name="%1$s" value="all"%2$s /> %3$s</label><br />',
			esc_attr( $name . '[forms_mode]' ),
			checked( $all, true, false ),
			esc_html__( 'All forms, including forms added later', 'formrelay-bridge' )
		);
		printf(
			'<label><input type="radio" name="%1$s" value="selected"%2$s /> %3$s</label>',
			esc_attr( $name . '[forms_mode]' ),
			checked( $all, false, false ),
			esc_html__( 'Only the forms ticked below', 'formrelay-bridge' )
		);
		echo '</fieldset>';

		$forms = self::published_forms();
		if ( ! $forms ) {
			echo '<p class="formrelay-no-forms">' . esc_html__( 'No published WPForms forms found.', 'formrelay-bridge' ) . '</p>';
			return;
		}
		echo '<table class="widefat striped formrelay-forms"><thead><tr>';
		echo '<th scope="col">' . esc_html__( 'Deliver', 'formrelay-bridge' ) . '</th>';
		echo '<th scope="col">' . esc_html__( 'Form', 'formrelay-bridge' ) . '</th>';
		echo '<th scope="col">' . esc_html__( 'Payload template', 'formrelay-bridge' ) . '</th>';
		echo '<th scope="col">' . esc_html__( 'Priority', 'formrelay-bridge' ) . '</th>';
		echo '<th scope="col">' . esc_html__( 'Partner', 'formrelay-bridge' ) . '</th>';
		echo '</tr></thead><tbody>';
		$partners = FormRelay_Settings::published_partners();
		foreach ( $forms as $form ) {
			$form_id  = absint( $form->ID );
			$selected = $all || in_array( $form_id, $settings['forms'], true );
			$one      = isset( $settings['form_settings'][ $form_id ] ) ? $settings['form_settings'][ $form_id ] : array(
				'template' => '',
				'priority' => FormRelay_Settings::DEFAULT_PRIORITY,
				'partner'  => '',
			);
			$prefix   = $name . '[form_settings][' . $form_id . ']';
			$title    = '' !== $form->post_title ? $form->post_title : __( '(no title)', 'formrelay-bridge' );
			echo '<tr>';
			printf(
				'<td><input type="checkbox" id="formrelay_form_%1$d" name="%2$s" value="%1$d"%3$s /></td>',
				esc_attr( $form_id ),
				esc_attr( $name . '[forms][]' ),
				checked( $selected, true, false )
			);
			printf(
				'<td><label for="formrelay_form_%1$d">%2$s</label> <span class="description">#%1$d</span></td>',
				esc_attr( $form_id ),
				esc_html( $title )
			);
			printf(
				'<td><input type="text" name="%1$s" value="%2$s" class="regular-text code" placeholder="intake.json.j2" pattern="[A-Za-z0-9_.\-]+\.j2" aria-label="%3$s" /></td>',
				esc_attr( $prefix . '[template]' ),
				esc_attr( $one['template'] ),
				/* translators: %d: form id. */
				esc_attr( sprintf( __( 'Payload template of form %d', 'formrelay-bridge' ), $form_id ) )
			);
			printf(
				'<td><input type="number" name="%1$s" value="%2$s" min="%3$d" max="%4$d" step="1" class="small-text" aria-label="%5$s" /></td>',
				esc_attr( $prefix . '[priority]' ),
				esc_attr( (string) $one['priority'] ),
				esc_attr( FormRelay_Settings::MIN_PRIORITY ),
				esc_attr( FormRelay_Settings::MAX_PRIORITY ),
				/* translators: %d: form id. */
				esc_attr( sprintf( __( 'Priority of form %d', 'formrelay-bridge' ), $form_id ) )
			);
			echo '<td>';
			self::render_partner_select( $prefix . '[partner]', $form_id, $one['partner'], $partners );
			echo '</td>';
			echo '</tr>';
		}
		echo '</tbody></table>';
	}

	/**
	 * One form's partner: a select of the partners the sidecar published, "Default
	 * (first partner)" ('') first. A stored name no longer published is offered as
	 * "name (not configured)" and kept until changed. Without a published list, a
	 * note, and the stored value kept (posted hidden): no free text can name a
	 * partner that does not exist.
	 *
	 * @param string        $input_name The input's name.
	 * @param int           $form_id    Form id (for the label).
	 * @param string        $current    The stored partner ('' = the default).
	 * @param string[]|null $partners   FormRelay_Settings::published_partners().
	 * @return void
	 */
	private static function render_partner_select( $input_name, $form_id, $current, $partners ) {
		if ( null === $partners ) {
			printf( '<input type="hidden" name="%1$s" value="%2$s" />', esc_attr( $input_name ), esc_attr( $current ) );
			echo '<p class="description formrelay-partners-unpublished">' . esc_html__( 'The sidecar has not published its partners yet (it does when it starts); until then the default partner.', 'formrelay-bridge' );
			if ( '' !== $current ) {
				/* translators: %s: partner name. */
				echo ' ' . esc_html( sprintf( __( 'Stored: %s.', 'formrelay-bridge' ), $current ) );
			}
			echo '</p>';
			return;
		}
		printf(
			'<select name="%1$s" class="formrelay-partner" aria-label="%2$s">',
			esc_attr( $input_name ),
			/* translators: %d: form id. */
			esc_attr( sprintf( __( 'Partner of form %d', 'formrelay-bridge' ), $form_id ) )
		);
		printf( '<option value=""%1$s>%2$s</option>', selected( $current, '', false ), esc_html__( 'Default (first partner)', 'formrelay-bridge' ) );
		foreach ( $partners as $partner ) {
			printf( '<option value="%1$s"%2$s>%3$s</option>', esc_attr( $partner ), selected( $current, $partner, false ), esc_html( $partner ) );
		}
		if ( '' !== $current && ! in_array( $current, $partners, true ) ) {
			printf(
				'<option value="%1$s" selected="selected">%2$s</option>',
				esc_attr( $current ),
				/* translators: %s: partner name. */
				esc_html( sprintf( __( '%s (not configured)', 'formrelay-bridge' ), $current ) )
			);
		}
		echo '</select>';
	}

	/**
	 * The "remove data on uninstall" checkbox (a hidden 0 first: unticked is posted too).
	 *
	 * @return void
	 */
	public static function render_uninstall_field() {
		$name = FormRelay_Settings::OPTION . '[remove_data_on_uninstall]';
		printf( '<input type="hidden" name="%s" value="0" />', esc_attr( $name ) );
		printf(
			'<label><input type="checkbox" name="%1$s" value="1"%2$s /> %3$s</label>',
			esc_attr( $name ),
			checked( FormRelay_Settings::get()['remove_data_on_uninstall'], true, false ),
			esc_html__( 'Delete the FormRelay tables (the queue and its log) and settings when the plugin is deleted', 'formrelay-bridge' )
		);
	}

	/**
	 * Published WPForms forms (post type `wpforms`), oldest first.
	 *
	 * @return WP_Post[]
	 */
	private static function published_forms() {
		return get_posts(
			array(
				'post_type'        => 'wpforms',
				'post_status'      => 'publish',
				'numberposts'      => self::MAX_FORMS,
				'orderby'          => 'ID',
				'order'            => 'ASC',
				'suppress_filters' => true,
				'no_found_rows'    => true,
			)
		);
	}

	/**
	 * "Set in wp-config.php" under a disabled input.
	 *
	 * @param string $constant The constant's name.
	 * @return void
	 */
	private static function constant_note( $constant ) {
		echo '<p class="description formrelay-from-constant">' . esc_html(
			sprintf(
				/* translators: %s: constant name. */
				__( 'Set in wp-config.php (%s).', 'formrelay-bridge' ),
				$constant
			)
		) . '</p>';
	}
}
